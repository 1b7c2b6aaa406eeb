package proc

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// MarkerEnv is the environment variable that ChildProcesses uses to recognise
// descendants that were reparented away from this process (for example to init after
// their parent died). Tests set it to a unique value in TestMain; children inherit it.
const MarkerEnv = "LEDGERVAULT_PROC_MARKER"

// procStat is the part of /proc/PID/stat that process supervision needs.
type procStat struct {
	pid, ppid, pgrp, session int
	state                    byte
}

// readStat parses /proc/PID/stat. The command name may contain spaces and
// parentheses, so the fields are taken after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 4 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: too few fields", pid)
	}
	st := procStat{pid: pid, state: f[0][0]}
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat ppid: %w", pid, err)
	}
	if st.pgrp, err = strconv.Atoi(f[2]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat pgrp: %w", pid, err)
	}
	if st.session, err = strconv.Atoi(f[3]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat session: %w", pid, err)
	}
	return st, nil
}

// allProcs returns the stat of every readable process.
func allProcs() ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		out = append(out, st)
	}
	return out, nil
}

// descendants returns every process below root in the parent tree.
func descendants(all []procStat, root int) []procStat {
	kids := map[int][]procStat{}
	for _, p := range all {
		kids[p.ppid] = append(kids[p.ppid], p)
	}
	var out []procStat
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, k := range kids[pid] {
			out = append(out, k)
			queue = append(queue, k.pid)
		}
	}
	return out
}

// hasEnv reports whether process pid has key=value in its initial environment.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// ChildProcesses lists the processes, zombies included, that descend from this
// process, plus processes anywhere that carry this process's MarkerEnv value (when it
// is set), which catches descendants reparented after their parent died. A correct
// program has none left after every operation returned.
func ChildProcesses() ([]int, error) {
	all, err := allProcs()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	set := map[int]bool{}
	for _, p := range descendants(all, self) {
		set[p.pid] = true
	}
	if v := os.Getenv(MarkerEnv); v != "" {
		return addMarked(all, set, MarkerEnv+"="+v, self), nil
	}
	return sortedKeys(set), nil
}

// ProcessesWithEnv lists every process (other than this one) whose initial
// environment contains key=value.
func ProcessesWithEnv(key, value string) ([]int, error) {
	all, err := allProcs()
	if err != nil {
		return nil, err
	}
	return addMarked(all, map[int]bool{}, key+"="+value, os.Getpid()), nil
}

func addMarked(all []procStat, set map[int]bool, kv string, self int) []int {
	for _, p := range all {
		if p.pid != self && !set[p.pid] && hasEnv(p.pid, kv) {
			set[p.pid] = true
		}
	}
	return sortedKeys(set)
}

func sortedKeys(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for pid := range set {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// Describe returns a short "pid ppid state cmdline" line per process, for error
// messages about leftover processes.
func Describe(pids []int) string {
	var sb strings.Builder
	for _, pid := range pids {
		st, err := readStat(pid)
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			fmt.Fprintf(&sb, "[%d gone] ", pid)
			continue
		}
		fmt.Fprintf(&sb, "[pid %d ppid %d state %c: %s] ", pid, st.ppid, st.state,
			strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	return sb.String()
}

// MarkTestProcess sets MarkerEnv to name-<pid> unless it is set already (by a parent
// test process), so that ChildProcesses also finds this test binary's descendants
// that were reparented away. TestMain calls it after GuardMain.
func MarkTestProcess(name string) {
	if os.Getenv(MarkerEnv) == "" {
		os.Setenv(MarkerEnv, fmt.Sprintf("%s-%d", name, os.Getpid()))
	}
}
