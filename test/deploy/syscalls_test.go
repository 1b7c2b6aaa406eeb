package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

// TestSystemCallsPassTheFilter runs what the units run, the real binary, under strace
// -f (children included: the shell commands of a --command-config store and their
// tools) and requires every system call made to be one the unit's SystemCallFilter
// allows: a call outside it would fail with EPERM under systemd (SystemCallErrorNumber),
// a failure no other test here would see. Workloads: the coordinator backing up a real
// node to a file:// store and to a shell-command store until it has a state snapshot and
// transactions, stopped by SIGTERM; compact and gc on both stores.
func TestSystemCallsPassTheFilter(t *testing.T) {
	strace := requireTool(t, "strace", "strace")
	analyze := requireTool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	addr := startNodeFor(t, dir)
	fileStore := []string{"--storage", "file://" + filepath.Join(dir, "filestore")}
	shellStore := []string{"--command-config", shellStoreConfig(t, dir)}

	used := map[string]map[string]bool{} // unit -> system calls
	trace := func(unit, name string, args ...string) {
		calls, err := straceRun(t, strace, filepath.Join(dir, name), args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if used[unit] == nil {
			used[unit] = map[string]bool{}
		}
		for _, c := range calls {
			used[unit][c] = true
		}
	}
	for i, store := range [][]string{fileStore, shellStore} {
		name := fmt.Sprintf("coordinator-%d", i)
		calls := straceCoordinator(t, strace, filepath.Join(dir, name), append([]string{"backup", "coordinator",
			"--backup-service-address", addr, "--transaction-batch-size", "500", "--poll-interval", "100ms",
			"--metadata-cache-dir", filepath.Join(dir, name+"-cache"), "--log-format", "json"}, store...))
		if used["ledgervault-backup.service"] == nil {
			used["ledgervault-backup.service"] = map[string]bool{}
		}
		for _, c := range calls {
			used["ledgervault-backup.service"][c] = true
		}
		trace("ledgervault-compact.service", fmt.Sprintf("compact-%d", i), append([]string{"compact", "--min-files", "2", "--delete-delay", "0s", "--log-format", "json"}, store...)...)
		trace("ledgervault-gc.service", fmt.Sprintf("gc-%d", i), append([]string{"gc", "--grace", "0s", "--log-format", "json"}, store...)...)
	}
	for _, unit := range services {
		allowed := unitSyscallFilter(t, analyze, parseUnit(t, filepath.Join(systemdDir(t), unit)))
		var denied []string
		for c := range used[unit] {
			if !allowed[c] {
				denied = append(denied, c)
			}
		}
		slices.Sort(denied)
		t.Logf("%s: %d distinct system calls traced, %d allowed by its filter", unit, len(used[unit]), len(allowed))
		if len(denied) > 0 {
			t.Errorf("%s: its SystemCallFilter denies (EPERM) system calls the binary made: %v", unit, denied)
		}
	}
}

// unitSyscallFilter returns the system calls a unit's SystemCallFilter= lines allow: the
// allow list of the lines without ~, less the calls of the lines with ~.
func unitSyscallFilter(t *testing.T, analyze string, u unit) map[string]bool {
	t.Helper()
	lines := u.get("Service", "SystemCallFilter")
	if len(lines) == 0 || strings.HasPrefix(lines[0], "~") {
		t.Fatalf("SystemCallFilter %v: want an allow list first", lines)
	}
	allowed, deny := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		set := allowed
		if strings.HasPrefix(l, "~") {
			set, l = deny, l[1:]
		}
		for _, item := range strings.Fields(l) {
			expandSyscalls(t, analyze, item, set, map[string]bool{})
		}
	}
	for c := range deny {
		delete(allowed, c)
	}
	return allowed
}

// expandSyscalls adds the system calls of item (a call, or a @group expanded by
// systemd-analyze syscall-filter, recursively) to set.
func expandSyscalls(t *testing.T, analyze, item string, set, seen map[string]bool) {
	t.Helper()
	if !strings.HasPrefix(item, "@") {
		set[item] = true
		return
	}
	if seen[item] {
		return
	}
	seen[item] = true
	out, err := exec.Command(analyze, "syscall-filter", "--no-pager", item).Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter %s: %v", item, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != item {
		t.Fatalf("systemd-analyze syscall-filter %s: unexpected output:\n%s", item, out)
	}
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		expandSyscalls(t, analyze, l, set, seen)
	}
}

// straceRun runs the binary with args under strace -f -c and returns the names of the
// system calls made; the output of the binary goes to base.log.
func straceRun(t *testing.T, strace, base string, args ...string) ([]string, error) {
	t.Helper()
	cmd, log, err := straceCommand(strace, base, args...)
	if err != nil {
		return nil, err
	}
	err = cmd.Run()
	log.Close()
	if err != nil {
		out, _ := os.ReadFile(base + ".log")
		return nil, fmt.Errorf("%v: %v\n%s", args, err, out)
	}
	return straceSummary(base + ".strace")
}

// straceCommand is strace -f -c of the binary with args, writing its table to
// base.strace and the binary's output to base.log (the caller closes the returned
// file once the command started).
func straceCommand(strace, base string, args ...string) (*exec.Cmd, *os.File, error) {
	log, err := os.Create(base + ".log")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(strace, append([]string{"-f", "-c", "-U", "name,calls", "-o", base + ".strace", "--", testbin.Path}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = filepath.Dir(base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, log, nil
}

// straceSummary reads the system call names of a strace -c -U name,calls table.
func straceSummary(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var calls []string
	rows := false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "------"):
			rows = !rows
		case rows && len(f) >= 2 && f[0] != "total":
			if _, err := strconv.Atoi(f[1]); err != nil {
				return nil, fmt.Errorf("%s: row %q", path, l)
			}
			calls = append(calls, f[0])
		}
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("%s: no system calls in:\n%s", path, b)
	}
	return calls, nil
}

// straceCoordinator runs a coordinator under strace until its metrics show a state
// snapshot and transactions through version 999 backed up, scrapes /healthz and
// /livez, stops it with SIGTERM (exit 0 required) and returns its system calls.
func straceCoordinator(t *testing.T, strace, base string, args []string) []string {
	t.Helper()
	cmd, log, err := straceCommand(strace, base, append(args, "--metrics-addr", "127.0.0.1:0")...)
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Start()
	log.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	fail := func(format string, a ...any) {
		out, _ := os.ReadFile(base + ".log")
		t.Fatalf(format+"\ncoordinator output:\n%s", append(a, out)...)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !coordinatorCaughtUp(base + ".log") {
		select {
		case err := <-done:
			done <- err
			fail("coordinator exited before backing up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			fail("coordinator did not back up a snapshot and versions 0-999 within 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := tracedChild(cmd.Process.Pid)
	if pid == 0 {
		fail("cannot find the coordinator under strace %d", cmd.Process.Pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the deferred check
		if err != nil {
			fail("coordinator after SIGTERM: %v", err)
		}
	case <-time.After(2 * time.Minute):
		fail("coordinator still running 2 minutes after SIGTERM")
	}
	calls, err := straceSummary(base + ".strace")
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

// coordinatorCaughtUp reports whether the coordinator whose JSON log is at path serves
// metrics that show a state snapshot and transactions through 999; it also reads
// /healthz and /livez (their system calls are part of the trace).
func coordinatorCaughtUp(path string) bool {
	addr := logValue(path, "metrics listening", "addr")
	if addr == "" {
		return false
	}
	get := func(p string) string {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	get("/healthz")
	get("/livez")
	m := get("/metrics")
	gauge := func(name string) float64 {
		r := regexp.MustCompile(`(?m)^ledgervault_coordinator_` + name + ` (\S+)$`).FindStringSubmatch(m)
		if r == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(r[1], 64)
		return v
	}
	return gauge("last_snapshot_version") >= 0 && gauge("last_transaction_version") >= 999
}

// logValue returns field of the first JSON log line of path whose msg is msg.
func logValue(path, msg, field string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			s, _ := rec[field].(string)
			return s
		}
	}
	return ""
}

// tracedChild returns the process strace (pid) started, from /proc.
func tracedChild(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		if f := strings.Fields(string(b)); len(f) > 0 {
			c, _ := strconv.Atoi(f[0])
			return c
		}
	}
	return 0
}

// startNodeFor initialises a small node in dir, runs it (untraced: it is not one of
// the units) until it committed version 1500 and returns its backup service address.
// The node stops when the test ends.
func startNodeFor(t *testing.T, dir string) string {
	t.Helper()
	nodeDir := filepath.Join(dir, "node")
	if r := testbin.Run(t, dir, "node", "init", "--dir", nodeDir, "--epoch-length", "500", "--initial-accounts", "2000", "--log-format", "json"); r.Code != 0 {
		t.Fatalf("node init: exit %d\n%s", r.Code, r.Stderr)
	}
	logPath := filepath.Join(dir, "node.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(testbin.Path, "node", "run", "--dir", nodeDir, "--backup-service-address", "127.0.0.1:0",
		"--metrics-addr=", "--until-version", "1500", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
			t.Error("node did not stop within a minute of SIGTERM")
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		addr := logValue(logPath, "node running", "backup_service")
		if addr != "" && logValue(logPath, "reached --until-version; serving until stopped", "msg") != "" {
			return addr
		}
		select {
		case err := <-done:
			done <- err
			out, _ := os.ReadFile(logPath)
			t.Fatalf("node exited: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("node did not reach version 1500 within 2 minutes:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shellStoreConfig writes a copy of the local shell-command sample
// (storage/shell/samples/local.yaml) storing under dir/shellstore and returns its path.
func shellStoreConfig(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "storage", "shell", "samples", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const root = `value: "/var/backups/ledgervault"`
	if !strings.Contains(string(b), root) {
		t.Fatalf("local.yaml no longer holds %s", root)
	}
	conf := strings.Replace(string(b), root, `value: "`+filepath.Join(dir, "shellstore")+`"`, 1)
	p := filepath.Join(dir, "shell.yaml")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
