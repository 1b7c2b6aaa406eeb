// Package operatorusage_test runs the ledgervault binary with bad input the way a
// new operator types it: every numeric, duration and word flag given a value out of
// range (on the command line, in the environment, in the configuration file) must
// exit 2 with the flag's name in the message, good values must be accepted, and the
// messages of bad storage URLs, command configs, log levels, gc's refusal and a
// locked node directory must say what to do.
package operatorusage_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "lv-operatorusage-test") }

// run runs the binary in dir with a clean environment (no LEDGERVAULT_* of the
// caller, HOME inside the test) plus extra.
func run(t *testing.T, dir string, extra []string, args ...string) testbin.Result {
	t.Helper()
	cmd := exec.Command(testbin.Path, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEDGERVAULT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg"))
	cmd.Env = append(cmd.Env, extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := testbin.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// flagCase is a command, one of its flags, values it refuses and values it takes.
type flagCase struct {
	cmd  []string
	flag string
	bad  []string
	good []string
}

var flagCases = []flagCase{
	{[]string{"restore"}, "concurrent-downloads", []string{"0", "-1", "257", "x"}, []string{"1", "256"}},
	{[]string{"verify"}, "concurrent-downloads", []string{"0", "-1"}, []string{"8"}},
	{[]string{"restore"}, "max-chunk-raw-size", []string{"0", "-5"}, []string{"1048576"}},
	{[]string{"verify"}, "max-chunk-raw-size", []string{"0"}, []string{"1048576"}},
	{[]string{"restore"}, "progress", []string{"bogus", ""}, []string{"none", "LOG"}},
	{[]string{"verify"}, "progress", []string{"yes"}, []string{"bar"}},
	{[]string{"verify"}, "format", []string{"restic"}, []string{"backupcli", "ledgervault", "auto"}},
	{[]string{"backup", "transaction"}, "concurrent-data-requests", []string{"-2", "0", "257"}, []string{"1", "16"}},
	{[]string{"backup", "epoch-ending"}, "max-chunk-size", []string{"0", "1023", "99999999999"}, []string{"1024", "65536"}},
	{[]string{"backup", "state-snapshot"}, "compression-level", []string{"0", "5"}, []string{"1", "4"}},
	{[]string{"backup", "transaction"}, "progress", []string{"loud"}, []string{"none"}},
	{[]string{"backup", "transaction"}, "num-transactions", []string{"0", "-1"}, []string{"1"}},
	{[]string{"backup", "coordinator"}, "poll-interval", []string{"0s", "-1s", "5"}, []string{"1s"}},
	{[]string{"backup", "coordinator"}, "transaction-batch-size", []string{"0"}, []string{"1000"}},
	{[]string{"backup", "coordinator"}, "shutdown-grace", []string{"-1s"}, []string{"0s", "30s"}},
	{[]string{"backup", "coordinator"}, "state-snapshot-interval", []string{"-1m"}, []string{"0s", "1h"}},
	{[]string{"backup", "coordinator"}, "node-max-age", []string{"-1s"}, []string{"0s", "2m"}},
	{[]string{"backup", "coordinator"}, "lease-ttl", []string{"0s", "50ms"}, []string{"100ms", "30s"}},
	{[]string{"backup", "coordinator"}, "retry-base", []string{"0s"}, []string{"1s"}},
	{[]string{"backup", "coordinator"}, "retry-max", []string{"0s"}, []string{"1m"}},
	{[]string{"backup", "coordinator"}, "resume-max-age", []string{"0s"}, []string{"10m"}},
	{[]string{"backup", "coordinator"}, "concurrent-data-requests", []string{"0"}, []string{"4"}},
	{[]string{"compact"}, "min-files", []string{"0", "1", "-3"}, []string{"2", "10"}},
	{[]string{"compact"}, "delete-delay", []string{"-1h"}, []string{"0s", "1h"}},
	{[]string{"gc"}, "batch-size", []string{"0", "-1"}, []string{"1", "64"}},
	{[]string{"gc"}, "grace", []string{"-1h", "soon"}, []string{"0s", "2h"}},
	{[]string{"audit"}, "concurrency", []string{"0", "300"}, []string{"1", "256"}},
	{[]string{"audit"}, "format", []string{"tar"}, []string{"backupcli"}},
	{[]string{"audit"}, "progress", []string{"bar"}, []string{"off"}},
	{[]string{"list"}, "log-level", []string{"bogus", "verbose"}, []string{"debug", "WARN"}},
	{[]string{"list"}, "log-format", []string{"xml"}, []string{"json", "text"}},
	{[]string{"storage", "ls"}, "log-level", []string{"bogus"}, []string{"error"}},
	{[]string{"node", "init"}, "validators", []string{"0", "1025"}, []string{"1", "4"}},
	{[]string{"node", "init"}, "epoch-length", []string{"0"}, []string{"10"}},
	{[]string{"node", "init"}, "block-size", []string{"0", "100001"}, []string{"100"}},
	{[]string{"node", "init"}, "genesis-accounts", []string{"0", "65537"}, []string{"100"}},
	{[]string{"node", "init"}, "initial-account-value-size", []string{"0"}, []string{"100"}},
	{[]string{"node", "init"}, "large-value-every", []string{"-1"}, []string{"0", "100"}},
	{[]string{"node", "init"}, "large-value-size", []string{"0", "99999999"}, []string{"65536"}},
	{[]string{"node", "init"}, "db-cache-mib", []string{"-1"}, []string{"0", "64"}},
	{[]string{"node", "run"}, "tps", []string{"-1", "NaN"}, []string{"0", "2.5"}},
	{[]string{"node", "run"}, "shutdown-grace", []string{"-1s"}, []string{"5s"}},
	{[]string{"node", "run"}, "write-timeout", []string{"-1s"}, []string{"30s"}},
	{[]string{"node", "run"}, "db-cache-mib", []string{"-1"}, []string{"8"}},
	{[]string{"quickstart"}, "versions", []string{"0"}, []string{"100"}},
	{[]string{"quickstart"}, "epoch-length", []string{"0"}, []string{"100"}},
	{[]string{"quickstart"}, "transaction-batch-size", []string{"0"}, []string{"100"}},
	{[]string{"quickstart"}, "max-chunk-size", []string{"0"}, []string{"1048576"}},
}

// TestBadFlagValuesExit2 gives each flag each bad value on the command line: exit
// status 2, the flag named, nothing run. A good value is accepted (the same command
// line with --help exits 0).
func TestBadFlagValuesExit2(t *testing.T) {
	dir := t.TempDir()
	for _, c := range flagCases {
		for _, v := range c.bad {
			args := append(append([]string{}, c.cmd...), "--"+c.flag+"="+v)
			r := run(t, dir, nil, args...)
			if r.Code != 2 || !strings.Contains(r.Stderr, "--"+c.flag) {
				t.Errorf("%s: exit %d, stderr %q; want 2 naming --%s", strings.Join(args, " "), r.Code, r.Stderr, c.flag)
			}
		}
		for _, v := range c.good {
			args := append(append([]string{}, c.cmd...), "--"+c.flag+"="+v, "--help")
			if r := run(t, dir, nil, args...); r.Code != 0 {
				t.Errorf("%s: exit %d, stderr %q; want the value accepted", strings.Join(args, " "), r.Code, r.Stderr)
			}
		}
	}
}

// TestBadEnvAndFileValuesExit2 gives bad values through LEDGERVAULT_* and the
// configuration file: exit 2, naming the flag and where the value came from.
func TestBadEnvAndFileValuesExit2(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	for _, c := range []struct {
		env   []string
		file  string
		args  []string
		wants []string
	}{
		{env: []string{"LEDGERVAULT_MIN_FILES=1"}, args: []string{"compact", "--storage", store},
			wants: []string{"LEDGERVAULT_MIN_FILES", "--min-files", "want at least 2"}},
		{env: []string{"LEDGERVAULT_CONCURRENT_DOWNLOADS=0"}, args: []string{"verify", "--storage", store, "--trust-waypoint", "0:" + strings.Repeat("0", 64)},
			wants: []string{"LEDGERVAULT_CONCURRENT_DOWNLOADS", "--concurrent-downloads", "want 1 to 256"}},
		{env: []string{"LEDGERVAULT_LOG_LEVEL=bogus"}, args: []string{"list", "--storage", store},
			wants: []string{"LEDGERVAULT_LOG_LEVEL", "--log-level", "want debug, info, warn or error"}},
		{file: "gc:\n  batch-size: 0\n", args: []string{"gc", "--storage", store},
			wants: []string{"ledgervault.yml:2", "--batch-size", "want at least 1"}},
		{file: "backup:\n  concurrent-data-requests: -2\n", args: []string{"backup", "transaction", "--storage", store, "--num-transactions", "1"},
			wants: []string{"ledgervault.yml:2", "--concurrent-data-requests", "want 1 to 256"}},
		{file: "progress: sometimes\n", args: []string{"restore", "--storage", store},
			wants: []string{"ledgervault.yml:1", "--progress", "want auto, bar, log or none"}},
	} {
		d := t.TempDir()
		if c.file != "" {
			if err := os.WriteFile(filepath.Join(d, "ledgervault.yml"), []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := run(t, d, c.env, c.args...)
		if r.Code != 2 {
			t.Errorf("%v %q %v: exit %d, stderr %q; want 2", c.env, c.file, c.args, r.Code, r.Stderr)
		}
		for _, w := range c.wants {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%v %q %v: stderr %q does not say %q", c.env, c.file, c.args, r.Stderr, w)
			}
		}
	}
	// A good value from the environment is taken: compact runs.
	if r := run(t, dir, []string{"LEDGERVAULT_MIN_FILES=3"}, "compact", "--storage", store, "--json"); r.Code == 2 {
		t.Errorf("LEDGERVAULT_MIN_FILES=3: exit 2, stderr %q", r.Stderr)
	}
}

// TestCobraUsageErrorsExit2 covers the usage errors cobra itself finds: unknown
// commands, flags and arguments, and missing required flags.
func TestCobraUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"backup", "bogus"}, `unknown command "bogus" for "ledgervault backup"`},
		{[]string{"list", "--storage", store, "--nope"}, "--nope"},
		{[]string{"restore", "extra"}, `"extra"`},
		{[]string{"backup", "epoch-ending", "--storage", store}, `"end-epoch"`},
		{[]string{"backup", "epoch-ending", "--storage", store, "--start-epoch", "5", "--end-epoch", "2"}, "--end-epoch 2 is not above --start-epoch 5"},
		{[]string{"backup", "state-snapshot", "--storage", store}, "--epoch or --version"},
		{[]string{"restore", "--storage", store, "--target-version", "latest", "--trust-waypoint", "0:" + strings.Repeat("0", 64)}, "--db"},
		{[]string{"restore", "--storage", store, "--db", dir, "--target-version", "latest", "--trust-waypoint", "0:zz"}, "--trust-waypoint"},
		{[]string{"verify", "--storage", store, "--trust-waypoint", "0:" + strings.Repeat("0", 64), "--from-version", "9", "--to-version", "3"}, "--from-version"},
		{[]string{"list"}, "--storage"},
		{[]string{"list", "--storage", store, "--command-config", "x.yaml"}, "--command-config"},
		{[]string{"node", "run"}, "--dir"},
		{[]string{"backup", "transaction", "--storage", store, "--num-transactions", "1", "--backup-service-address", "::bad"}, "--backup-service-address"},
		{[]string{"backup", "coordinator", "--storage", store, "--backup-service-address", "::bad"}, "--backup-service-address"},
		{[]string{"backup", "coordinator", "--storage", store, "--retry-base", "2s", "--retry-max", "1s"}, "--retry-max"},
		{[]string{"backup", "coordinator", "--storage", store, "--state-snapshot-interval-epochs", "0"}, "--state-snapshot-interval"},
	} {
		r := run(t, dir, nil, c.args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
	for _, args := range [][]string{{}, {"backup"}, {"node"}} {
		if r := run(t, dir, nil, args...); r.Code != 0 || !strings.Contains(r.Stdout, "Usage:") {
			t.Errorf("%v: exit %d, stdout %q; want the help", args, r.Code, r.Stdout)
		}
	}
}

// subcommandLine is a line of "Available Commands:" in cobra's help.
var subcommandLine = regexp.MustCompile(`^  ([a-z][a-z-]*) `)

// commands returns every command path below args, read from the binary's own help
// (so a new command is covered without editing this test).
func commands(t *testing.T, dir string, args []string) [][]string {
	t.Helper()
	r := run(t, dir, nil, append(append([]string{}, args...), "--help")...)
	if r.Code != 0 {
		t.Fatalf("%v --help: exit %d, stderr %q", args, r.Code, r.Stderr)
	}
	all := [][]string{args}
	in := false
	for _, line := range strings.Split(r.Stdout, "\n") {
		switch {
		case line == "Available Commands:":
			in = true
		case in && line == "":
			in = false
		case in:
			m := subcommandLine.FindStringSubmatch(line)
			if m == nil || m[1] == "help" || m[1] == "completion" {
				continue
			}
			all = append(all, commands(t, dir, append(append([]string{}, args...), m[1]))...)
		}
	}
	return all
}

// TestHelpOfEveryCommand reads every command's --help: it exits 0, and no flag
// claims a default it does not have ("(default 0s)" next to "default 10s").
func TestHelpOfEveryCommand(t *testing.T) {
	dir := t.TempDir()
	cmds := commands(t, dir, nil)
	if len(cmds) < 15 {
		t.Fatalf("only %d commands found in the help: %v", len(cmds), cmds)
	}
	for _, c := range cmds {
		r := run(t, dir, nil, append(append([]string{}, c...), "--help")...)
		for _, line := range strings.Split(r.Stdout, "\n") {
			if strings.Contains(line, "(default 0s)") {
				t.Errorf("%v --help: %q shows a zero default as 0s", c, strings.TrimSpace(line))
			}
		}
	}
}

// flagLine is a flag with a value in cobra's help: its name and value type.
var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z][a-z0-9-]*) (int|int64|uint|uint64|float|duration) `)

// TestEveryNumberFlagRefusesGarbage gives every number and duration flag of every
// command (read from the binary's help) a value that is not a number, and the
// unsigned ones -1: exit 2, naming the flag, before anything runs.
func TestEveryNumberFlagRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	seen := 0
	for _, c := range commands(t, dir, nil) {
		r := run(t, dir, nil, append(append([]string{}, c...), "--help")...)
		for _, line := range strings.Split(r.Stdout, "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seen++
			bad := []string{"seven"}
			if strings.HasPrefix(m[2], "uint") {
				bad = append(bad, "-1")
			}
			for _, v := range bad {
				args := append(append([]string{}, c...), "--"+m[1]+"="+v)
				if r := run(t, dir, nil, args...); r.Code != 2 || !strings.Contains(r.Stderr, "--"+m[1]) {
					t.Errorf("%s: exit %d, stderr %q; want 2 naming --%s", strings.Join(args, " "), r.Code, r.Stderr, m[1])
				}
			}
		}
	}
	if seen < 40 {
		t.Fatalf("only %d number flags found in the help: the walk misses commands", seen)
	}
}
