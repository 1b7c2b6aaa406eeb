package faultinject

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage/shell"
)

// Shell wraps the commands of a command-adapter configuration (storage/shell) so
// that each call fails, at the rate set with SetRate, in one of the ways that
// command can fail:
//
//   - every command: Refuse (exit 1 before running the command);
//   - create_for_write, save_metadata_line: Cut (the command gets part of its stdin,
//     then is killed with its process group, leaving whatever temporary file it
//     made; exit 1) and CommitThenFail (run the command, then exit 1);
//   - create_backup, backup_metadata_file and the delete and abort commands:
//     CommitThenFail;
//   - open_for_read: HalfRead (print the first half of the command's output, exit 1);
//   - list_metadata_files, list_backups, list_files: ListFail (print the first half
//     of the lines, exit 1).
//
// The choice is deterministic: call n of a command fails, and how, according to a
// hash of the seed, the command's name and n. The wrapped commands keep their
// state in a control directory: the rate and enabled kinds, a call counter per
// command and one line per injected fault; Counts reads them. Everything is under
// a lock file (flock), so concurrent calls count exactly.
type Shell struct {
	dir  string
	seed uint64
}

// The control directory's files.
const (
	shellLock  = "lock"
	shellRate  = "rate"   // the rate in ppm
	shellKinds = "kinds"  // enabled kinds, space-separated; empty: all
	shellFocus = "focus"  // "pattern ppm kinds..." or empty: see SetFocus
	shellCalls = "calls-" // one byte appended per call
	shellFault = "injected-"
	shellTmp   = "tmp"
)

// shellKindsOf gives the kinds each command of the original format and its
// optional additions can be made to fail in.
var shellKindsOf = map[string][]Kind{
	"create_backup":        {Refuse, CommitThenFail},
	"create_for_write":     {Refuse, Cut, CommitThenFail},
	"open_for_read":        {Refuse, HalfRead},
	"save_metadata_line":   {Refuse, Cut, CommitThenFail},
	"list_metadata_files":  {Refuse, ListFail},
	"backup_metadata_file": {Refuse, CommitThenFail},
	"list_backups":         {Refuse, ListFail},
	"list_files":           {Refuse, ListFail},
	"delete_backup":        {Refuse, CommitThenFail},
	"delete_metadata":      {Refuse, CommitThenFail},
	"delete_file":          {Refuse, CommitThenFail},
	"abort_stale_uploads":  {Refuse, CommitThenFail},
}

// NewShell prepares the control directory dir (created if needed) with faults
// off and returns the wrapper.
func NewShell(dir string, seed uint64) (*Shell, error) {
	if err := os.MkdirAll(filepath.Join(dir, shellTmp), 0o755); err != nil {
		return nil, fmt.Errorf("fault injection control directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fault injection control directory: %w", err)
	}
	s := &Shell{dir: abs, seed: seed}
	if err := s.SetRate(0); err != nil {
		return nil, err
	}
	if err := s.SetFocus("", 0); err != nil {
		return nil, err
	}
	return s, s.SetKinds()
}

// Dir returns the control directory.
func (s *Shell) Dir() string { return s.dir }

// withLock runs f holding the control directory's lock, as the commands do.
func (s *Shell) withLock(f func() error) error {
	lf, err := os.OpenFile(filepath.Join(s.dir, shellLock), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("fault injection lock: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("fault injection lock: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// SetRate sets the share of calls that fail, from 0 (faults off) to 1.
func (s *Shell) SetRate(rate float64) error {
	p, err := ppm(rate)
	if err != nil {
		return err
	}
	return s.withLock(func() error {
		return os.WriteFile(filepath.Join(s.dir, shellRate), []byte(strconv.Itoa(p)+"\n"), 0o644)
	})
}

// SetKinds restricts the faults to kinds (none given: every kind).
func (s *Shell) SetKinds(kinds ...Kind) error {
	return s.withLock(func() error {
		return os.WriteFile(filepath.Join(s.dir, shellKinds), []byte(kindList(kinds)+"\n"), 0o644)
	})
}

// SetFocus gives the calls on files whose FILE_NAME contains pattern a rate and
// kinds of their own (none given: every kind the command can fail in), in place of
// SetRate's and SetKinds'; they are counted as operation "<command>@<pattern>".
// An empty pattern ends the focus.
func (s *Shell) SetFocus(pattern string, rate float64, kinds ...Kind) error {
	p, err := ppm(rate)
	if err != nil {
		return err
	}
	if strings.ContainsAny(pattern, " \t\n/*?[]\\") {
		return fmt.Errorf("fault focus pattern %q: want no blanks, slashes or glob characters", pattern)
	}
	line := ""
	if pattern != "" {
		line = fmt.Sprintf("%s %d %s", pattern, p, kindList(kinds))
	}
	return s.withLock(func() error {
		return os.WriteFile(filepath.Join(s.dir, shellFocus), []byte(line+"\n"), 0o644)
	})
}

// Counts reads the calls and faults counted so far.
func (s *Shell) Counts() (Counts, error) {
	c := newCounts()
	err := s.withLock(func() error {
		ents, err := os.ReadDir(s.dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if op, ok := strings.CutPrefix(name, shellCalls); ok {
				fi, err := e.Info()
				if err != nil {
					return err
				}
				c.Calls[op] = int(fi.Size()) // one byte per call
			}
			if k, ok := strings.CutPrefix(name, shellFault); ok {
				if err := readInjected(filepath.Join(s.dir, name), Kind(k), c); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("read fault counts in %s: %w", s.dir, err)
	}
	return c, nil
}

// readInjected counts the lines ("op call") of one kind's file.
func readInjected(path string, k Kind, c Counts) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		op, _, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return fmt.Errorf("%s: line %q", path, sc.Text())
		}
		c.inject(op, k)
	}
	return sc.Err()
}

// Wrap returns cfg with every command wrapped, and the variables the wrapped
// commands need (LVFI_DIR, LVFI_SEED) added to its env_vars. Commands cfg leaves
// empty stay empty.
func (s *Shell) Wrap(cfg shell.Config) (shell.Config, error) {
	out := cfg
	out.EnvVars = append(append([]shell.EnvVar(nil), cfg.EnvVars...),
		shell.EnvVar{Key: "LVFI_DIR", Value: s.dir},
		shell.EnvVar{Key: "LVFI_SEED", Value: strconv.FormatUint(s.seed, 10)})
	c := &out.Commands
	for _, f := range []struct {
		op  string
		cmd *string
	}{
		{"create_backup", &c.CreateBackup}, {"create_for_write", &c.CreateForWrite},
		{"open_for_read", &c.OpenForRead}, {"save_metadata_line", &c.SaveMetadataLine},
		{"list_metadata_files", &c.ListMetadataFiles}, {"backup_metadata_file", &c.BackupMetadataFile},
		{"list_backups", &c.ListBackups}, {"list_files", &c.ListFiles}, {"delete_backup", &c.DeleteBackup},
		{"delete_metadata", &c.DeleteMetadata}, {"delete_file", &c.DeleteFile},
		{"abort_stale_uploads", &c.AbortStaleUploads},
	} {
		if strings.TrimSpace(*f.cmd) == "" {
			continue
		}
		*f.cmd = wrapScript(f.op, *f.cmd)
	}
	if err := out.Validate(); err != nil {
		return shell.Config{}, fmt.Errorf("wrapped command config: %w", err)
	}
	return out, nil
}

// WriteConfig writes cfg as a command-adapter YAML file at path.
func WriteConfig(path string, cfg shell.Config) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode command config: %w", err)
	}
	b = append([]byte("# Written by internal/faultinject: every command fails at the rate in LVFI_DIR/rate.\n"), b...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write command config: %w", err)
	}
	return nil
}

// wrapScript returns the script of op that decides the call's fault, injects it
// and otherwise runs inner unchanged (as a function, with the same shell options).
func wrapScript(op, inner string) string {
	kinds := shellKindsOf[op]
	var b strings.Builder
	fmt.Fprintf(&b, "# Fault injection (internal/faultinject) around the original command.\nlvfi_op=%s\nlvfi_kinds=%q\n", op, kindList(kinds))
	b.WriteString("lvfi_inner() {\n")
	b.WriteString(inner)
	if !strings.HasSuffix(inner, "\n") {
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	b.WriteString(strings.ReplaceAll(shellRuntime, "@PREFIX@", proc.ShellPrefix))
	return b.String()
}

// shellRuntime decides and injects; it ends by running lvfi_inner when the call
// is not faulted. Decisions hash "seed:op:n" with cksum (CRC-32): the call fails
// when hash mod 10^6 is below the rate in ppm, with the kind (hash / 10^6) mod the
// number of kinds allowed, as pick does.
const shellRuntime = `lvfi_fail() { echo "faultinject: $lvfi_op call $lvfi_n: $1" >&2; exit 1; }
lvfi_run() {
  # Run the original command in a subshell with errexit on, whatever its status.
  set +o errexit
  ( set -o errexit; lvfi_inner )
  lvfi_st=$?
  set -o errexit
}
exec {lvfi_lock}>>"$LVFI_DIR/lock"
flock "$lvfi_lock"
lvfi_rate=$(<"$LVFI_DIR/rate")
lvfi_enabled=$(<"$LVFI_DIR/kinds")
read -r lvfi_fpat lvfi_frate lvfi_fkinds < "$LVFI_DIR/focus" || true
if [ -n "$lvfi_fpat" ] && [[ "${FILE_NAME-}" == *"$lvfi_fpat"* ]]; then
  # A focused call: counted apart, with the focus's rate and kinds.
  lvfi_op="$lvfi_op@$lvfi_fpat"
  lvfi_rate=$lvfi_frate
  lvfi_enabled=$lvfi_fkinds
fi
# One byte per call, appended: a call killed here (the store kills the command's
# group when its context ends) counts or not, but never resets the counter as a
# truncated rewrite would.
printf x >> "$LVFI_DIR/calls-$lvfi_op"
lvfi_n=$(stat -c %s -- "$LVFI_DIR/calls-$lvfi_op")
lvfi_kind=none
if [ "$lvfi_rate" -gt 0 ]; then
  read -r lvfi_h _ < <(printf '%s' "$LVFI_SEED:$lvfi_op:$lvfi_n" | cksum)
  if [ $((lvfi_h % 1000000)) -lt "$lvfi_rate" ]; then
    lvfi_cand=()
    for lvfi_k in ${lvfi_kinds//,/ }; do
      if [ -z "$lvfi_enabled" ] || [[ " ${lvfi_enabled//,/ } " == *" $lvfi_k "* ]]; then lvfi_cand+=("$lvfi_k"); fi
    done
    if [ "${#lvfi_cand[@]}" -gt 0 ]; then
      lvfi_kind=${lvfi_cand[$(( (lvfi_h / 1000000) % ${#lvfi_cand[@]} ))]}
      printf '%s %s\n' "$lvfi_op" "$lvfi_n" >> "$LVFI_DIR/injected-$lvfi_kind"
    fi
  fi
fi
flock -u "$lvfi_lock"
exec {lvfi_lock}>&-
case "$lvfi_kind" in
refuse)
  lvfi_fail "refused" ;;
commit_then_fail)
  lvfi_run
  if [ "$lvfi_st" != 0 ]; then exit "$lvfi_st"; fi
  lvfi_fail "done, reporting failure" ;;
cut)
  # The original command reads a FIFO in a session of its own; it gets part of
  # stdin, then is killed with its group before any EOF, like an upload that dies.
  lvfi_keep=$(( (lvfi_h / 7) % 4096 ))
  lvfi_fifo="$LVFI_DIR/tmp/fifo-$$-$lvfi_n"
  mkfifo -m 600 -- "$lvfi_fifo"
  setsid bash -c '@PREFIX@'"$(declare -f lvfi_inner)"'; lvfi_inner' < "$lvfi_fifo" &
  lvfi_pid=$!
  exec {lvfi_w}>"$lvfi_fifo"
  rm -f -- "$lvfi_fifo"
  head -c "$lvfi_keep" >&"$lvfi_w" || true
  sleep 0.3
  kill -KILL -- "-$lvfi_pid" 2>/dev/null || true
  wait "$lvfi_pid" 2>/dev/null || true
  exec {lvfi_w}>&-
  lvfi_fail "cut after $lvfi_keep bytes of stdin" ;;
half_read)
  lvfi_out="$LVFI_DIR/tmp/out-$$-$lvfi_n"
  lvfi_run > "$lvfi_out"
  if [ "$lvfi_st" != 0 ]; then rm -f -- "$lvfi_out"; exit "$lvfi_st"; fi
  lvfi_size=$(stat -c %s -- "$lvfi_out")
  head -c "$((lvfi_size / 2))" -- "$lvfi_out" || true
  rm -f -- "$lvfi_out"
  lvfi_fail "read cut after $((lvfi_size / 2)) of $lvfi_size bytes" ;;
list_fail)
  lvfi_out="$LVFI_DIR/tmp/out-$$-$lvfi_n"
  lvfi_run > "$lvfi_out"
  if [ "$lvfi_st" != 0 ]; then rm -f -- "$lvfi_out"; exit "$lvfi_st"; fi
  lvfi_lines=$(wc -l < "$lvfi_out")
  head -n "$((lvfi_lines / 2))" -- "$lvfi_out" || true
  rm -f -- "$lvfi_out"
  lvfi_fail "listing cut after $((lvfi_lines / 2)) of $lvfi_lines lines" ;;
esac
lvfi_inner
`
