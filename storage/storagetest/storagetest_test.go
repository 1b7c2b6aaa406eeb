package storagetest_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

const brokenEnv = "LEDGERVAULT_STORAGETEST_BROKEN"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// broken wraps the local store with one classic bug.
type broken struct {
	*local.Store
	bug string
}

type brokenWriter struct {
	storage.Writer
	bug string
}

func (b broken) Create(ctx context.Context, bk storage.BackupHandle, name string) (storage.Writer, error) {
	w, err := b.Store.Create(context.Background(), bk, name) // ignores ctx on purpose for "ignore-cancel"
	if err != nil {
		return nil, err
	}
	switch b.bug {
	case "leak-goroutine":
		go func() { time.Sleep(time.Hour) }()
	case "leak-process":
		exec.Command("sleep", "60").Start()
	}
	if b.bug == "buffer-in-memory" {
		return &bufferingWriter{Writer: w}, nil
	}
	if b.bug == "ignore-cancel" || b.bug == "commit-on-abort" {
		return brokenWriter{w, b.bug}, nil
	}
	if ctx.Err() != nil {
		w.Abort()
		return nil, ctx.Err()
	}
	return &ctxWriter{Writer: w, ctx: ctx}, nil
}

// ctxWriter restores the local store's cancel checks for the bugs that do not
// concern cancellation.
type ctxWriter struct {
	storage.Writer
	ctx context.Context
}

func (w *ctxWriter) Commit() error {
	if err := w.ctx.Err(); err != nil {
		w.Writer.Abort()
		return err
	}
	return w.Writer.Commit()
}

// bufferingWriter keeps the whole file in memory until Commit.
type bufferingWriter struct {
	storage.Writer
	buf []byte
}

func (w *bufferingWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *bufferingWriter) Commit() error {
	if _, err := w.Writer.Write(w.buf); err != nil {
		return err
	}
	return w.Writer.Commit()
}

// Abort commits what was written: the bug of a writer whose Close commits.
func (w brokenWriter) Abort() error {
	if w.bug == "commit-on-abort" {
		w.Writer.Commit()
		return nil
	}
	return w.Writer.Abort()
}

func (b broken) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	if b.bug == "overwrite-metadata" {
		os.Remove(b.Root() + "/metadata/" + name)
	}
	return b.Store.SaveMetadata(ctx, name, data)
}

// ListFiles lists temporary files too: an in-flight or aborted write shows.
func (b broken) ListFiles(ctx context.Context, bk storage.BackupHandle) ([]storage.FileInfo, error) {
	files, err := b.Store.ListFiles(ctx, bk)
	if err != nil || b.bug != "list-temp-files" {
		return files, err
	}
	ents, err := os.ReadDir(b.Root() + "/" + string(bk))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), ".") {
			files = append(files, storage.FileInfo{Handle: storage.FileHandle(string(bk) + "/" + e.Name()), Size: fi.Size(), ModTime: fi.ModTime()})
		}
	}
	slices.SortFunc(files, func(x, y storage.FileInfo) int { return strings.Compare(string(x.Handle), string(y.Handle)) })
	return files, nil
}

// TestSuiteCatchesBrokenStores runs the suite on stores with known bugs, each in a
// child test process, and checks that the suite fails the right cases. In the child
// (brokenEnv set) it runs the suite itself.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if bug := os.Getenv(brokenEnv); bug != "" {
		storagetest.Run(t, func(t *testing.T) storage.Store {
			st, err := local.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return broken{st, bug}
		}, storagetest.Options{StaleLeftovers: true, LargeSize: 1 << 20})
		return
	}
	cases := map[string][]string{
		"commit-on-abort":    {"AbortSmall", "FailingProducerSmall", "PanicSmall"},
		"ignore-cancel":      {"CancelSmall"},
		"overwrite-metadata": {"Metadata"},
		"leak-goroutine":     {"CommitSmall"},
		"leak-process":       {"CommitSmall"},
		"buffer-in-memory":   {"Stream64MiB"},
		"list-temp-files":    {"ListFiles"},
	}
	for bug, wantFailed := range cases {
		t.Run(bug, func(t *testing.T) {
			run := "^TestSuiteCatchesBrokenStores$/^(" + strings.Join(wantFailed, "|") + "|CommitLarge)$"
			cmd := exec.Command(os.Args[0], "-test.run", run, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %q", bug)
			}
			for _, name := range wantFailed {
				if !strings.Contains(string(out), "--- FAIL: TestSuiteCatchesBrokenStores/"+name+" ") {
					t.Errorf("bug %q: case %s did not fail; output:\n%s", bug, name, tail(string(out), 3000))
				}
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
