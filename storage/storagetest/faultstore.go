package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// ErrInjected is the error a Fault returns when its Err is nil.
var ErrInjected = errors.New("injected storage fault")

// Op names a call of a storage.Store or of one of its Writers.
type Op int

// The calls a FaultStore counts and can inject faults into, one for each method of
// storage.Store and storage.Writer that does I/O.
const (
	OpCreateBackup Op = iota + 1
	OpCreate
	OpWrite
	OpCommit
	OpAbort
	OpOpen
	OpSaveMetadata
	OpListMetadata
	OpDeleteMetadata
	OpListBackups
	OpListFiles
	OpDeleteBackup
	OpAbortStaleUploads
	OpClose
)

var opNames = [...]string{"", "CreateBackup", "Create", "Write", "Commit", "Abort", "Open", "SaveMetadata",
	"ListMetadata", "DeleteMetadata", "ListBackups", "ListFiles", "DeleteBackup", "AbortStaleUploads", "Close"}

// String returns the name of the method the Op stands for.
func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Call is one call as a Rule sees it.
type Call struct {
	// Op is the call.
	Op Op
	// N numbers the calls of Op on the FaultStore, from 1, in the order they started.
	N int64
	// Backup is the folder given to Create, ListFiles or DeleteBackup, and a Writer's
	// folder for Write, Commit and Abort; empty for the other calls.
	Backup storage.BackupHandle
	// Name is the name given to CreateBackup, Create or SaveMetadata, and a Writer's
	// file name for Write, Commit and Abort.
	Name string
	// Handle is the handle given to Open or DeleteMetadata, and the Writer's handle
	// for Write, Commit and Abort.
	Handle storage.FileHandle
	// Data is the data of SaveMetadata and of one Write. Rules must not keep or
	// change it; Calls leaves it out.
	Data []byte
}

// Mode is what a Fault does to a call.
type Mode int

const (
	// Pass runs the call unchanged.
	Pass Mode = iota
	// FailBefore returns the fault's error without running the call.
	FailBefore
	// FailAfter runs the call, so its effect happens (a Commit or SaveMetadata
	// commits, a folder is created or deleted), then returns the fault's error instead
	// of the outcome: commit-then-fail, as a timeout after the upload. What the call
	// returned (a reader, a writer) is released.
	FailAfter
	// FailThenCommit returns the fault's error at once and runs the call later, just
	// before the next call of Fault.LandBefore (default: the same Op) starts, or at
	// Settle or Close: the caller sees a failure, its read-back sees nothing, and its
	// retry meets the late effect, as with an SDK whose first attempt lands after the
	// client gave up. Store calls land on a context that is not cancelled with the
	// caller's; a Writer's Commit lands on the writer's own (a backend refuses the
	// late commit if that ended), and Abort of that writer leaves the pending commit
	// alone. Call Settle or Close before the test ends, or the writer stays open.
	FailThenCommit
	// Duplicate runs the call, and when that succeeded runs it a second time, as a
	// client that retries a call whose response was lost; the caller sees the second
	// outcome (ErrAlreadyExists from a create-only SaveMetadata, ErrNotFound from a
	// delete, a second folder from CreateBackup whose first folder is left behind).
	// For Commit the second attempt is a create-only commit of another writer of the
	// same name, which the backend refuses (normally with ErrAlreadyExists). For
	// Create and Open the first writer or reader is released.
	Duplicate
	// Cut passes the first Fault.Keep bytes of a Write to the backend and then fails
	// that Write with the fault's error (an upload cut mid-stream); on Open, the
	// reader yields the first Keep bytes of the file and then the error (a read
	// failing halfway). On other calls it acts as FailBefore.
	Cut
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Pass:
		return "Pass"
	case FailBefore:
		return "FailBefore"
	case FailAfter:
		return "FailAfter"
	case FailThenCommit:
		return "FailThenCommit"
	case Duplicate:
		return "Duplicate"
	case Cut:
		return "Cut"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Fault is what a Rule makes of one call. The zero Fault passes the call unchanged.
type Fault struct {
	// Mode says how the call fails, if at all.
	Mode Mode
	// Err is the error a failing call returns; nil means an error wrapping
	// ErrInjected that names the call.
	Err error
	// Keep is the number of bytes a Cut lets through.
	Keep int
	// LandBefore is the Op before whose next call a FailThenCommit call lands; zero
	// means the call's own Op.
	LandBefore Op
	// Block, when not nil, holds the call until it is closed; if the call's context
	// (for Writer calls, the context given to Create) ends first, the call returns
	// the context's error without running.
	Block <-chan struct{}
	// Before, when not nil, runs before the call (and before Block).
	Before func()
	// After, when not nil, runs once the call is done with what the caller is about
	// to get, and may change it.
	After func(*Outcome)
}

func (f Fault) isZero() bool {
	return f.Mode == Pass && f.Block == nil && f.Before == nil && f.After == nil
}

// Outcome is what a call returns, as Fault.After sees and may change it. Only the
// fields of the call's results are used.
type Outcome struct {
	// Err is the call's error.
	Err error
	// N is the byte count of Write and the count of AbortStaleUploads.
	N int
	// Backup is the folder CreateBackup created.
	Backup storage.BackupHandle
	// Handle is the handle SaveMetadata returned.
	Handle storage.FileHandle
	// Handles is the result of ListMetadata.
	Handles []storage.FileHandle
	// Backups is the result of ListBackups.
	Backups []storage.BackupInfo
	// Files is the result of ListFiles.
	Files []storage.FileInfo

	reader io.ReadCloser
	writer storage.Writer
}

// release frees what a run produced that its caller will not get.
func (o *Outcome) release() {
	if o.reader != nil {
		o.reader.Close()
		o.reader = nil
	}
	if o.writer != nil {
		o.writer.Abort()
		o.writer = nil
	}
}

// Rule decides the fault for one call; the zero Fault lets it pass. Rules run in the
// order they were added and the first non-zero Fault applies. A rule may be called
// from several goroutines at once.
type Rule func(Call) Fault

// Nth returns a rule that applies fault to the n-th call (from 1) of op.
func Nth(op Op, n int64, fault Fault) Rule {
	return func(c Call) Fault {
		if c.Op == op && c.N == n {
			return fault
		}
		return Fault{}
	}
}

// Every returns a rule that applies fault to every call of op.
func Every(op Op, fault Fault) Rule {
	return func(c Call) Fault {
		if c.Op == op {
			return fault
		}
		return Fault{}
	}
}

// FaultStore wraps a storage.Store for tests: it counts and logs every call of the
// store and of its writers and applies the first matching Rule's Fault to each (fail
// before the call, commit then fail, fail then commit later, run it twice, block it,
// cut a write or read mid-stream, run hooks). Without rules it behaves exactly as
// the wrapped store. It is safe for concurrent use.
type FaultStore struct {
	st storage.Store

	mu      sync.Mutex
	rules   []Rule
	counts  map[Op]int64
	calls   []Call
	pending []pendingCall
}

// pendingCall is a FailThenCommit call that has not landed yet.
type pendingCall struct {
	before Op
	run    func()
}

var _ storage.Store = (*FaultStore)(nil)

// NewFaultStore wraps st with the given rules.
func NewFaultStore(st storage.Store, rules ...Rule) *FaultStore {
	return &FaultStore{st: st, rules: rules, counts: map[Op]int64{}}
}

// AddRule appends a rule; it applies to calls that start afterwards.
func (f *FaultStore) AddRule(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}

// Unwrap returns the wrapped store.
func (f *FaultStore) Unwrap() storage.Store { return f.st }

// Count returns how many calls of op have started.
func (f *FaultStore) Count(op Op) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Calls returns every call started so far except Writes (which Count counts), in
// the order they started, without their Data.
func (f *FaultStore) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Settle lands every FailThenCommit call still pending, in the order they failed.
func (f *FaultStore) Settle() {
	f.land(func(pendingCall) bool { return true })
}

// land runs (and forgets) the pending calls that match.
func (f *FaultStore) land(match func(pendingCall) bool) {
	f.mu.Lock()
	var due []pendingCall
	kept := f.pending[:0]
	for _, p := range f.pending {
		if match(p) {
			due = append(due, p)
		} else {
			kept = append(kept, p)
		}
	}
	f.pending = kept
	f.mu.Unlock()
	for _, p := range due {
		p.run()
	}
}

// start lands what is due before c, numbers and logs c and returns its fault.
func (f *FaultStore) start(c *Call) Fault {
	f.land(func(p pendingCall) bool { return p.before == c.Op })
	f.mu.Lock()
	f.counts[c.Op]++
	c.N = f.counts[c.Op]
	if c.Op != OpWrite {
		logged := *c
		logged.Data = nil
		f.calls = append(f.calls, logged)
	}
	rules := f.rules
	f.mu.Unlock()
	for _, r := range rules {
		if fault := r(*c); !fault.isZero() {
			return fault
		}
	}
	return Fault{}
}

// runner performs the real call into an Outcome, on the context given.
type runner func(ctx context.Context, o *Outcome)

// calls holds how one call is performed: run is the real call; again, if not nil, the
// second attempt of a Duplicate (run otherwise); cut, if not nil, performs a Cut that
// lets keep bytes through before err; deferred, if not nil, runs when a
// FailThenCommit puts the call off.
type calls struct {
	run      runner
	again    runner
	cut      func(ctx context.Context, keep int, err error, o *Outcome)
	deferred func()
}

// do runs call c through its fault.
func (f *FaultStore) do(ctx context.Context, c Call, cs calls) (out Outcome) {
	fault := f.start(&c)
	defer func() {
		if fault.After != nil {
			fault.After(&out)
		}
	}()
	if fault.Before != nil {
		fault.Before()
	}
	if fault.Block != nil {
		select {
		case <-fault.Block:
		case <-ctx.Done():
			out.Err = ctx.Err()
			return out
		}
	}
	err := fault.Err
	if err == nil {
		err = fmt.Errorf("%s %s: %w", c.Op, target(c), ErrInjected)
	}
	switch fault.Mode {
	case Pass:
		cs.run(ctx, &out)
	case FailBefore:
		out.Err = err
	case Cut:
		if cs.cut == nil {
			out.Err = err
			break
		}
		cs.cut(ctx, fault.Keep, err, &out)
	case FailAfter:
		cs.run(ctx, &out)
		out.release()
		out = Outcome{Err: err}
	case FailThenCommit:
		before := fault.LandBefore
		if before == 0 {
			before = c.Op
		}
		late := context.WithoutCancel(ctx)
		if cs.deferred != nil {
			cs.deferred()
		}
		f.mu.Lock()
		f.pending = append(f.pending, pendingCall{before: before, run: func() {
			var o Outcome
			cs.run(late, &o)
			o.release()
		}})
		f.mu.Unlock()
		out.Err = err
	case Duplicate:
		cs.run(ctx, &out)
		if out.Err == nil {
			out.release()
			again := cs.again
			if again == nil {
				again = cs.run
			}
			out = Outcome{}
			again(ctx, &out)
		}
	default:
		out.Err = fmt.Errorf("%s %s: unknown fault mode %d", c.Op, target(c), fault.Mode)
	}
	return out
}

// target names what a call is about, for injected errors.
func target(c Call) string {
	switch {
	case c.Handle != "":
		return string(c.Handle)
	case c.Backup != "" && c.Name != "":
		return string(c.Backup) + "/" + c.Name
	case c.Backup != "":
		return string(c.Backup)
	}
	return c.Name
}

// CreateBackup creates a folder through the rules.
func (f *FaultStore) CreateBackup(ctx context.Context, name string) (storage.BackupHandle, error) {
	out := f.do(ctx, Call{Op: OpCreateBackup, Name: name}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Backup, o.Err = f.st.CreateBackup(ctx, name)
	}})
	return out.Backup, out.Err
}

// Create starts a writer whose Write, Commit and Abort go through the rules.
func (f *FaultStore) Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error) {
	out := f.do(ctx, Call{Op: OpCreate, Backup: backup, Name: name}, calls{run: func(ctx context.Context, o *Outcome) {
		w, err := f.st.Create(ctx, backup, name)
		if err != nil {
			o.Err = err
			return
		}
		o.writer = w
	}})
	if out.Err != nil {
		out.release()
		return nil, out.Err
	}
	return &faultWriter{f: f, w: out.writer, ctx: ctx, backup: backup, name: name}, nil
}

// Open opens a file through the rules; a Cut fault cuts the returned stream.
func (f *FaultStore) Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	run := func(ctx context.Context, o *Outcome) {
		o.reader, o.Err = f.st.Open(ctx, h)
	}
	out := f.do(ctx, Call{Op: OpOpen, Handle: h}, calls{run: run, cut: func(ctx context.Context, keep int, err error, o *Outcome) {
		run(ctx, o)
		if o.Err == nil {
			o.reader = &cutReader{r: o.reader, left: int64(max(keep, 0)), err: err}
		}
	}})
	if out.Err != nil {
		out.release()
		return nil, out.Err
	}
	return out.reader, nil
}

// cutReader yields left bytes of r, then err.
type cutReader struct {
	r    io.ReadCloser
	left int64
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = c.err // the file was shorter than the cut: the cut still fails the read
	}
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }

// SaveMetadata writes a metadata file through the rules.
func (f *FaultStore) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	out := f.do(ctx, Call{Op: OpSaveMetadata, Name: name, Data: data}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Handle, o.Err = f.st.SaveMetadata(ctx, name, data)
	}})
	return out.Handle, out.Err
}

// ListMetadata lists metadata through the rules.
func (f *FaultStore) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	out := f.do(ctx, Call{Op: OpListMetadata}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Handles, o.Err = f.st.ListMetadata(ctx)
	}})
	return out.Handles, out.Err
}

// DeleteMetadata deletes a metadata file through the rules.
func (f *FaultStore) DeleteMetadata(ctx context.Context, h storage.FileHandle) error {
	return f.do(ctx, Call{Op: OpDeleteMetadata, Handle: h}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Err = f.st.DeleteMetadata(ctx, h)
	}}).Err
}

// ListBackups lists folders through the rules.
func (f *FaultStore) ListBackups(ctx context.Context) ([]storage.BackupInfo, error) {
	out := f.do(ctx, Call{Op: OpListBackups}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Backups, o.Err = f.st.ListBackups(ctx)
	}})
	return out.Backups, out.Err
}

// ListFiles lists a folder's files through the rules.
func (f *FaultStore) ListFiles(ctx context.Context, backup storage.BackupHandle) ([]storage.FileInfo, error) {
	out := f.do(ctx, Call{Op: OpListFiles, Backup: backup}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Files, o.Err = f.st.ListFiles(ctx, backup)
	}})
	return out.Files, out.Err
}

// DeleteBackup deletes a folder through the rules.
func (f *FaultStore) DeleteBackup(ctx context.Context, h storage.BackupHandle) error {
	return f.do(ctx, Call{Op: OpDeleteBackup, Backup: h}, calls{run: func(ctx context.Context, o *Outcome) {
		o.Err = f.st.DeleteBackup(ctx, h)
	}}).Err
}

// AbortStaleUploads sweeps stale uploads through the rules.
func (f *FaultStore) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	out := f.do(ctx, Call{Op: OpAbortStaleUploads}, calls{run: func(ctx context.Context, o *Outcome) {
		o.N, o.Err = f.st.AbortStaleUploads(ctx, olderThan)
	}})
	return out.N, out.Err
}

// Close lands the pending FailThenCommit calls, then closes the wrapped store
// through the rules.
func (f *FaultStore) Close() error {
	f.Settle()
	return f.do(context.Background(), Call{Op: OpClose}, calls{run: func(_ context.Context, o *Outcome) {
		o.Err = f.st.Close()
	}}).Err
}

// faultWriter passes a writer's calls through the FaultStore's rules.
type faultWriter struct {
	f      *FaultStore
	w      storage.Writer
	ctx    context.Context
	backup storage.BackupHandle
	name   string

	mu      sync.Mutex
	pending bool // a FailThenCommit Commit has not landed: Abort leaves it alone
}

func (w *faultWriter) call(op Op, data []byte) Call {
	return Call{Op: op, Backup: w.backup, Name: w.name, Handle: w.w.Handle(), Data: data}
}

// Handle returns the wrapped writer's handle.
func (w *faultWriter) Handle() storage.FileHandle { return w.w.Handle() }

// Write writes through the rules; a Cut passes Keep bytes, then fails.
func (w *faultWriter) Write(p []byte) (int, error) {
	out := w.f.do(w.ctx, w.call(OpWrite, p), calls{
		run: func(_ context.Context, o *Outcome) { o.N, o.Err = w.w.Write(p) },
		cut: func(_ context.Context, keep int, err error, o *Outcome) {
			n, werr := w.w.Write(p[:min(max(keep, 0), len(p))])
			o.N, o.Err = n, werr
			if werr == nil {
				o.Err = err
			}
		},
	})
	return out.N, out.Err
}

// Commit commits through the rules. A Duplicate's second attempt is a create-only
// commit of another writer of the same name; a FailThenCommit leaves the wrapped
// writer open until the commit lands.
func (w *faultWriter) Commit() error {
	out := w.f.do(w.ctx, w.call(OpCommit, nil), calls{
		run: func(_ context.Context, o *Outcome) {
			o.Err = w.w.Commit()
			w.mu.Lock()
			w.pending = false
			w.mu.Unlock()
		},
		again: func(ctx context.Context, o *Outcome) {
			dup, err := w.f.st.Create(ctx, w.backup, w.name)
			if err != nil {
				o.Err = err
				return
			}
			defer dup.Abort()
			o.Err = dup.Commit()
		},
		deferred: func() {
			w.mu.Lock()
			w.pending = true
			w.mu.Unlock()
		},
	})
	return out.Err
}

// Abort aborts through the rules; it leaves a writer whose commit is pending alone.
func (w *faultWriter) Abort() error {
	return w.f.do(w.ctx, w.call(OpAbort, nil), calls{run: func(_ context.Context, o *Outcome) {
		w.mu.Lock()
		pending := w.pending
		w.mu.Unlock()
		if !pending {
			o.Err = w.w.Abort()
		}
	}}).Err
}
