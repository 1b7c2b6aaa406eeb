// Package shell is a storage backend that runs operator-supplied shell commands, in
// the command-adapter YAML format node operators already use (see Config and
// docs/storage.md).
//
// Every command runs as bash -c 'set -o nounset -o errexit -o pipefail; <script>'
// in its own process group and is killed with its group on cancel. Commands that
// receive data (create_for_write, save_metadata_line) run under a guard process (see
// internal/proc): the data goes through the guard, which closes the pipeline's stdin
// only on Commit and kills the whole pipeline, reparented descendants included,
// before it can see EOF on Abort, on cancel and when ledgervault dies. Inputs reach
// the commands only as environment variables. Handles printed by commands are bounded
// and validated.
//
// Exit status conventions: 17 means "already exists" (ErrAlreadyExists), 44 means
// "not found" (ErrNotFound); well-known messages of the aws, gcloud and az CLIs are
// recognised too.
package shell

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage"
)

const (
	// ExitAlreadyExists is the exit status a command uses to say "already exists".
	ExitAlreadyExists = 17
	// ExitNotFound is the exit status a command uses to say "not found".
	ExitNotFound = 44
)

// Store runs shell commands for each storage operation. It is safe for concurrent
// use.
type Store struct {
	cfg  Config
	bash string
	env  []string
	dir  string
}

// Options are optional settings of a Store.
type Options struct {
	// Dir is the working directory every command runs in; empty means the current
	// one. Configs written for backup-cli use paths relative to where it ran (for
	// example FOLDER: ./).
	Dir string
}

var _ storage.Store = (*Store)(nil)

// Load reads a YAML command config and returns a store using it.
func Load(path string) (*Store, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, storage.ConfigError(err)
	}
	return New(cfg)
}

// New returns a store that runs cfg's commands. The binary must call
// proc.GuardMain first thing in main (or TestMain), because writes run under a guard
// that is this executable.
func New(cfg Config) (*Store, error) {
	return NewWithOptions(cfg, Options{})
}

// NewWithOptions is New with options.
func NewWithOptions(cfg Config, o Options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, storage.ConfigError(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("shell store: %w", err))
	}
	env := os.Environ()
	for _, e := range cfg.EnvVars {
		env = append(env, e.Key+"="+e.Value)
	}
	return &Store{cfg: cfg, bash: bash, env: env, dir: o.Dir}, nil
}

func (s *Store) environ(kv ...string) []string {
	return append(append([]string(nil), s.env...), kv...)
}

// classify maps a command's failure to the storage errors.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ee *proc.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("%s: %w", op, err)
	}
	// The ExitError already names the operation.
	if ee.Killed {
		return err
	}
	stderr := strings.ToLower(ee.Stderr)
	switch {
	case ee.Code == ExitAlreadyExists || containsAny(stderr, "preconditionfailed", "precondition failed",
		"blobalreadyexists", "cannot overwrite existing file", "conditionnotmet", "(412)", "status 412",
		"did not hold", "already exists"):
		return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
	case ee.Code == ExitNotFound || containsAny(stderr, "nosuchkey", "no such file", "blobnotfound",
		"(404)", "not found", "matched no objects", "no urls matched", "does not exist"):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case ee.Code == 126 || ee.Code == 127 || containsAny(stderr, "accessdenied", "access denied",
		"permission denied", "(403)", "invalidaccesskeyid", "authorizationfailure", "authenticationfailed"):
		return storage.Permanent(err)
	}
	return err
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// run runs a non-data command and returns its stdout, at most limit bytes.
func (s *Store) run(ctx context.Context, op, script string, limit int64, kv ...string) ([]byte, error) {
	p, err := proc.Start(ctx, proc.Spec{
		Name:       op,
		Path:       s.bash,
		Args:       []string{"bash", "-c", proc.ShellPrefix + script},
		Env:        s.environ(kv...),
		Dir:        s.dir,
		StdoutPipe: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out, rerr := io.ReadAll(io.LimitReader(p.Stdout(), limit+1))
	if rerr == nil && int64(len(out)) > limit {
		rerr = fmt.Errorf("output larger than %d bytes", limit)
		p.Kill()
	}
	werr := p.Wait()
	if werr != nil {
		return nil, classify(op, werr)
	}
	if rerr != nil {
		return nil, fmt.Errorf("%s: %w", op, rerr)
	}
	return out, nil
}

func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateBackup runs create_backup with BACKUP_NAME=<name>-<random> and returns the
// handle it prints.
func (s *Store) CreateBackup(ctx context.Context, name string) (storage.BackupHandle, error) {
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	out, err := s.run(ctx, "create_backup", s.cfg.Commands.CreateBackup, maxHandleLine, "BACKUP_NAME="+name+"-"+randomSuffix())
	if err != nil {
		return "", err
	}
	h, err := readHandleLine(bytes.NewReader(out))
	if err != nil {
		return "", fmt.Errorf("create_backup: %w", err)
	}
	return storage.BackupHandle(h), nil
}

// Create starts create_for_write under a guard and reads the handle it prints.
func (s *Store) Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error) {
	if err := storage.ValidateName(name); err != nil {
		return nil, err
	}
	if err := storage.ValidateHandle(string(backup)); err != nil {
		return nil, err
	}
	return s.startWriter(ctx, "create_for_write "+string(backup)+"/"+name, s.cfg.Commands.CreateForWrite,
		"BACKUP_HANDLE="+string(backup), "FILE_NAME="+name)
}

func (s *Store) startWriter(ctx context.Context, op, script string, kv ...string) (*writer, error) {
	if s.dir != "" {
		// The guard runs the pipeline itself and takes no working directory.
		script = "cd -- \"$LEDGERVAULT_WORKDIR\"\n" + script
		kv = append(kv, "LEDGERVAULT_WORKDIR="+s.dir)
	}
	g, err := proc.StartGuarded(ctx, proc.GuardSpec{Name: op, Script: script, Env: s.environ(kv...)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	h, err := readHandleLine(g.Stdout())
	if err != nil {
		if errors.Is(err, errNoHandle) {
			// stdout closed without a handle: the command is probably exiting; let it,
			// so its status and stderr explain why.
			select {
			case <-g.Process().Done():
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
			}
		}
		g.Abort()
		var ee *proc.ExitError
		if werr := g.Process().Wait(); errors.As(werr, &ee) && !ee.Killed && ee.Code != proc.GuardExitAborted {
			return nil, classify(op, werr) // the command failed before printing a handle
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	w := &writer{op: op, g: g, handle: storage.FileHandle(h), drained: make(chan struct{})}
	// Whatever else the command prints is dropped, so it never blocks on stdout.
	go func() {
		defer close(w.drained)
		io.Copy(io.Discard, g.Stdout())
	}()
	return w, nil
}

// writer feeds a guarded pipeline.
type writer struct {
	op      string
	g       *proc.Guarded
	handle  storage.FileHandle
	drained chan struct{}

	mu        sync.Mutex
	finished  bool
	committed bool
}

func (w *writer) Handle() storage.FileHandle { return w.handle }

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return 0, fmt.Errorf("%s: writer already finished", w.op)
	}
	return w.g.Write(p)
}

// Commit ends the data and requires the pipeline to exit with status 0.
func (w *writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed {
		return nil
	}
	if w.finished {
		return fmt.Errorf("%s: commit after abort", w.op)
	}
	w.finished = true
	err := w.g.Commit()
	<-w.drained
	if err != nil {
		return classify(w.op, err)
	}
	w.committed = true
	return nil
}

// Abort kills the pipeline before it can see EOF; a no-op after Commit.
func (w *writer) Abort() error {
	if !w.mu.TryLock() {
		// A Write blocked on a stalled pipeline (or a Commit) holds the lock in another
		// goroutine: kill the pipeline so that it returns.
		w.g.Process().Kill()
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	if w.finished {
		return nil
	}
	w.finished = true
	err := w.g.Abort()
	<-w.drained
	if err != nil {
		return fmt.Errorf("abort %s: %w", w.op, err)
	}
	return nil
}

// Open runs open_for_read and streams its stdout. A command failure before any output
// is reported by Open (ErrNotFound for a missing file); a failure later is reported
// by Read instead of a clean EOF.
func (s *Store) Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return nil, err
	}
	op := "open_for_read " + string(h)
	p, err := proc.Start(ctx, proc.Spec{
		Name:       op,
		Path:       s.bash,
		Args:       []string{"bash", "-c", proc.ShellPrefix + s.cfg.Commands.OpenForRead},
		Env:        s.environ("FILE_HANDLE="+string(h), "FILE_NAME="+path.Base(string(h))),
		Dir:        s.dir,
		StdoutPipe: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	r := &reader{op: op, p: p, first: make([]byte, 32<<10)}
	n, err := io.ReadAtLeast(p.Stdout(), r.first, 1)
	r.first = r.first[:n]
	if err != nil {
		werr := p.Wait()
		r.done = true
		if werr != nil {
			return nil, classify(op, werr)
		}
		if err != io.EOF {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return r, nil
}

type reader struct {
	op    string
	p     *proc.Process
	first []byte
	done  bool
	err   error
}

func (r *reader) Read(b []byte) (int, error) {
	if len(r.first) > 0 {
		n := copy(b, r.first)
		r.first = r.first[n:]
		return n, nil
	}
	if r.done {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n, err := r.p.Stdout().Read(b)
	if err == io.EOF {
		r.done = true
		if werr := r.p.Wait(); werr != nil {
			r.err = classify(r.op, werr)
			return n, r.err
		}
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%s: %w", r.op, err)
	}
	return n, err
}

func (r *reader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	r.p.Kill()
	r.p.Wait()
	return nil
}

// SaveMetadata runs save_metadata_line under a guard with FILE_NAME=name.
func (s *Store) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	w, err := s.startWriter(ctx, "save_metadata_line "+name, s.cfg.Commands.SaveMetadataLine, "FILE_NAME="+name)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return "", err
	}
	if err := w.Commit(); err != nil {
		return "", err
	}
	return w.Handle(), nil
}

// ListMetadata runs list_metadata_files.
func (s *Store) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	out, err := s.run(ctx, "list_metadata_files", s.cfg.Commands.ListMetadataFiles, maxListing)
	if err != nil {
		return nil, err
	}
	hs, err := parseHandles(out)
	if err != nil {
		return nil, fmt.Errorf("list_metadata_files: %w", err)
	}
	return hs, nil
}

// DeleteMetadata runs delete_metadata, or backup_metadata_file (moving the file out
// of the metadata folder) when only that is configured.
func (s *Store) DeleteMetadata(ctx context.Context, h storage.FileHandle) error {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return err
	}
	script := s.cfg.Commands.DeleteMetadata
	op := "delete_metadata"
	if script == "" {
		script, op = s.cfg.Commands.BackupMetadataFile, "backup_metadata_file"
	}
	if script == "" {
		return storage.Permanent(errors.New("delete metadata: neither delete_metadata nor backup_metadata_file is configured"))
	}
	_, err := s.run(ctx, op+" "+string(h), script, 64<<10, "FILE_HANDLE="+string(h), "FILE_NAME="+path.Base(string(h)))
	return err
}

// DeleteFile runs delete_file to remove one file of a backup folder; without it the
// store cannot delete single files (a permanent error says so).
func (s *Store) DeleteFile(ctx context.Context, h storage.FileHandle) error {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return err
	}
	if s.cfg.Commands.DeleteFile == "" {
		return storage.Permanent(errors.New("delete file: delete_file is not configured"))
	}
	_, err := s.run(ctx, "delete_file "+string(h), s.cfg.Commands.DeleteFile, 64<<10, "FILE_HANDLE="+string(h), "FILE_NAME="+path.Base(string(h)))
	return err
}

// ListBackups runs list_backups.
func (s *Store) ListBackups(ctx context.Context) ([]storage.BackupInfo, error) {
	if s.cfg.Commands.ListBackups == "" {
		return nil, fmt.Errorf("list backups: list_backups is not configured: %w", storage.ErrNotSupported)
	}
	out, err := s.run(ctx, "list_backups", s.cfg.Commands.ListBackups, maxListing)
	if err != nil {
		return nil, err
	}
	infos, err := parseBackups(out)
	if err != nil {
		return nil, fmt.Errorf("list_backups: %w", err)
	}
	return infos, nil
}

// ListFiles runs list_files with BACKUP_HANDLE. Without list_files it reports an
// error matching storage.ErrNotSupported (not a permanent failure), so callers fall
// back to what the original six commands allow.
func (s *Store) ListFiles(ctx context.Context, b storage.BackupHandle) ([]storage.FileInfo, error) {
	if err := storage.ValidateHandle(string(b)); err != nil {
		return nil, err
	}
	if s.cfg.Commands.ListFiles == "" {
		return nil, fmt.Errorf("list files of %s: list_files is not configured: %w", b, storage.ErrNotSupported)
	}
	out, err := s.run(ctx, "list_files "+string(b), s.cfg.Commands.ListFiles, maxListing, "BACKUP_HANDLE="+string(b))
	if err != nil {
		return nil, err
	}
	files, err := parseFiles(out)
	if err != nil {
		return nil, fmt.Errorf("list_files %s: %w", b, err)
	}
	return files, nil
}

// DeleteBackup runs delete_backup.
func (s *Store) DeleteBackup(ctx context.Context, h storage.BackupHandle) error {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return err
	}
	if s.cfg.Commands.DeleteBackup == "" {
		return storage.Permanent(errors.New("delete backup: delete_backup is not configured"))
	}
	_, err := s.run(ctx, "delete_backup "+string(h), s.cfg.Commands.DeleteBackup, 64<<10, "BACKUP_HANDLE="+string(h))
	return err
}

// AbortStaleUploads runs abort_stale_uploads with OLDER_THAN_SECONDS; without it
// there is nothing the store can sweep and it reports 0.
func (s *Store) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	if s.cfg.Commands.AbortStaleUploads == "" {
		return 0, nil
	}
	secs := int64(olderThan / time.Second)
	if secs < 0 {
		secs = 0
	}
	out, err := s.run(ctx, "abort_stale_uploads", s.cfg.Commands.AbortStaleUploads, 64<<10, "OLDER_THAN_SECONDS="+strconv.FormatInt(secs, 10))
	if err != nil {
		return 0, err
	}
	return parseCount(out)
}

// Close releases nothing: every command has been waited for when its call returned.
func (s *Store) Close() error { return nil }
