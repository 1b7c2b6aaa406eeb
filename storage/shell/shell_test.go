package shell_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/internal/testmain"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) { testmain.Run(m, "shell-test") }

// localConfig loads samples/local.yaml with ROOT set to root.
func localConfig(t testing.TB, root string) shell.Config {
	cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newLocal(t *testing.T) storage.Store {
	st, err := shell.New(localConfig(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformanceLocalSample(t *testing.T) {
	storagetest.Run(t, newLocal, storagetest.Options{StaleLeftovers: true, LargeSize: 20<<20 + 12345})
}

func TestSamplesParse(t *testing.T) {
	for _, name := range []string{"local.yaml", "aws.yaml", "gcloud.yaml", "azure.yaml"} {
		cfg, err := shell.LoadConfig(filepath.Join("samples", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := cfg.Commands
		for _, script := range []string{c.CreateBackup, c.CreateForWrite, c.OpenForRead, c.SaveMetadataLine,
			c.ListMetadataFiles, c.BackupMetadataFile, c.ListBackups, c.ListFiles, c.DeleteBackup, c.DeleteMetadata, c.AbortStaleUploads} {
			if out, err := exec.Command("bash", "-n", "-c", script).CombinedOutput(); err != nil {
				t.Errorf("%s: bash -n: %v: %s\n%s", name, err, out, script)
			}
		}
		for key, v := range map[string]string{"list_backups": c.ListBackups, "list_files": c.ListFiles, "delete_backup": c.DeleteBackup,
			"delete_metadata": c.DeleteMetadata, "abort_stale_uploads": c.AbortStaleUploads} {
			if v == "" {
				t.Errorf("%s: %s missing", name, key)
			}
		}
	}
}

// The original command-adapter format (six keys) still loads unchanged.
func TestLegacyConfig(t *testing.T) {
	legacy := `env_vars:
  - key: "BUCKET"
    value: "my-bucket"
commands:
  create_backup: 'echo "$BACKUP_NAME"'
  create_for_write: |
    FILE_HANDLE="$BACKUP_HANDLE/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    gzip -c | aws s3 cp - "s3://$BUCKET/$FILE_HANDLE"
  open_for_read: 'aws s3 cp "s3://$BUCKET/$FILE_HANDLE" - | gzip -cd'
  save_metadata_line: |
    FILE_HANDLE="metadata/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    gzip -c | aws s3 cp - "s3://$BUCKET/$FILE_HANDLE"
  list_metadata_files: 'aws s3 ls s3://$BUCKET/metadata/ | sed -ne "s#.* \(.*\)#metadata/\1#p"'
  backup_metadata_file: 'aws s3 mv s3://$BUCKET/metadata/$FILE_NAME s3://$BUCKET/metadata_backup/$FILE_NAME --no-progress'
`
	cfg, err := shell.ParseConfig([]byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EnvVars[0].Value != "my-bucket" || !strings.Contains(cfg.Commands.OpenForRead, "gzip -cd") {
		t.Fatalf("parsed %+v", cfg)
	}
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Without list_files, listing a folder is "not supported", which callers fall
	// back from, never a permanent failure that would stop work.
	if _, err := st.ListFiles(t.Context(), "b-1"); !errors.Is(err, storage.ErrNotSupported) || storage.IsPermanent(err) {
		t.Fatalf("ListFiles without list_files: %v, want ErrNotSupported and not permanent", err)
	}
	for _, bad := range []string{
		"commands:\n  create_backup: x\n",                     // missing commands
		legacy + "  typo_key: 'x'\n",                          // unknown key
		strings.Replace(legacy, `"BUCKET"`, `"FILE_NAME"`, 1), // reserved variable
		"",
	} {
		if _, err := shell.ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig accepted %q", bad)
		}
	}
}

// Values reach commands as environment variables, never as shell text.
func TestValuesAreNotShellText(t *testing.T) {
	root := t.TempDir()
	cfg := localConfig(t, root)
	cfg.EnvVars = append(cfg.EnvVars, shell.EnvVar{Key: "EVIL", Value: `$(touch "$ROOT/pwned")`})
	cfg.Commands.CreateBackup = `echo "$EVIL" > /dev/null; mkdir -- "$ROOT/$BACKUP_NAME"; echo "$BACKUP_NAME"`
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateBackup(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "pwned")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a value was evaluated as shell text")
	}
}

// Commands that print bad handles or fail are reported with their stderr.
func TestBadCommands(t *testing.T) {
	cfg := localConfig(t, t.TempDir())
	cfg.Commands.CreateBackup = `echo "../../etc"`
	cfg.Commands.CreateForWrite = `echo "unused" >&2; exit 3`
	cfg.Commands.SaveMetadataLine = `head -c 5000 /dev/zero | tr '\0' a; echo`
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateBackup(t.Context(), "x"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("CreateBackup with a traversal handle: %v, want ErrInvalidName", err)
	}
	if _, err := st.Create(t.Context(), "b", "f"); err == nil || !strings.Contains(err.Error(), "unused") {
		t.Fatalf("Create with a failing command: %v, want its stderr", err)
	}
	if _, err := st.SaveMetadata(t.Context(), "m", []byte("x")); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("SaveMetadata with an oversized handle: %v, want ErrInvalidName", err)
	}
	pids, _ := proc.ChildProcesses()
	if len(pids) > 0 {
		t.Fatalf("children left: %s", proc.Describe(pids))
	}
}

func TestReadErrorAfterOutput(t *testing.T) {
	cfg := localConfig(t, t.TempDir())
	cfg.Commands.OpenForRead = `printf 'partial'; echo "connection reset" >&2; exit 5`
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.Open(t.Context(), "b/f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(r)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("reading a file whose command failed: %v, want the failure, not EOF", err)
	}
}

// Abort from another goroutine stops a Write blocked on a pipeline that stopped
// reading.
func TestAbortUnblocksWrite(t *testing.T) {
	cfg := localConfig(t, t.TempDir())
	cfg.Commands.CreateForWrite = `echo "b/f"; exec 1>&-; sleep 60`
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Create(t.Context(), "b", "f")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(make([]byte, 8<<20)) // far more than the pipes buffer
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("Write into an aborted pipeline succeeded")
	}
	if pids, _ := proc.ChildProcesses(); len(pids) > 0 {
		t.Fatalf("children left: %s", proc.Describe(pids))
	}
}

// TestSample checks that the embedded samples are the files in samples/, that the
// values given replace the sample's, and that unknown names are errors.
func TestSample(t *testing.T) {
	for _, name := range []string{"local", "aws", "gcloud", "azure"} {
		want, err := shell.LoadConfig(filepath.Join("samples", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := shell.Sample(name, nil)
		if err != nil {
			t.Fatalf("Sample(%s): %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Sample(%s) differs from samples/%s.yaml", name, name)
		}
	}
	cfg, err := shell.Sample("local", map[string]string{"ROOT": "/srv/x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cfg.EnvVars {
		if e.Key == "ROOT" && e.Value != "/srv/x" {
			t.Fatalf("ROOT = %q, want /srv/x", e.Value)
		}
	}
	if _, err := shell.Sample("local", map[string]string{"NOPE": "1"}); err == nil {
		t.Fatal("an unknown environment variable was accepted")
	}
	if _, err := shell.Sample("../samples/local", nil); err == nil {
		t.Fatal("a path outside the samples was accepted")
	}
	if _, err := shell.Sample("nope", nil); err == nil {
		t.Fatal("an unknown sample was accepted")
	}
}

// A config written for backup-cli uses paths relative to where it ran (FOLDER: ./):
// Options.Dir runs every command there, the guarded writers too.
func TestOptionsDirRunsCommandsThere(t *testing.T) {
	cfg, err := shell.ParseConfig([]byte(`env_vars:
  - key: "FOLDER"
    value: "./"
commands:
  create_backup: 'echo $BACKUP_NAME'
  create_for_write: |
    mkdir -p "$FOLDER/$BACKUP_HANDLE"
    FILE_HANDLE="$BACKUP_HANDLE/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    cat > "$FOLDER/$FILE_HANDLE"
  open_for_read: 'cat "$FILE_HANDLE"'
  save_metadata_line: |
    mkdir -p "$FOLDER/metadata"
    FILE_HANDLE="metadata/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    cat > "$FOLDER/$FILE_HANDLE"
  list_metadata_files: '(test -d $FOLDER/metadata && cd $FOLDER/metadata && ls -1 || exec) | while read f; do echo metadata/$f; done'
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := shell.NewWithOptions(cfg, shell.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b, err := st.CreateBackup(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Create(ctx, b, "f")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "m.meta", []byte("line\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, string(w.Handle()))); err != nil || string(got) != "data" {
		t.Fatalf("written in %s: %q %v", dir, got, err)
	}
	hs, err := st.ListMetadata(ctx)
	if err != nil || !reflect.DeepEqual(hs, []storage.FileHandle{"metadata/m.meta"}) {
		t.Fatalf("list: %v %v", hs, err)
	}
	r, err := st.Open(ctx, w.Handle())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "data" {
		t.Fatalf("read %q %v", got, err)
	}
	// A missing file: cat's "No such file or directory" is ErrNotFound.
	if _, err := st.Open(ctx, "b/none"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestDeleteFile(t *testing.T) {
	root := t.TempDir()
	cfg := localConfig(t, root)
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.DeleteFile(ctx, "b/f"); !storage.IsPermanent(err) || !strings.Contains(err.Error(), "delete_file is not configured") {
		t.Fatalf("unconfigured: %v", err)
	}
	cfg.Commands.DeleteFile = `F="$ROOT/$FILE_HANDLE"; if [ ! -f "$F" ]; then exit 44; fi; rm -- "$F"`
	if st, err = shell.New(cfg); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "b"), 0o755)
	os.WriteFile(filepath.Join(root, "b/f"), []byte("x"), 0o644)
	if err := st.DeleteFile(ctx, "b/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "b/f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("still there: %v", err)
	}
	if err := st.DeleteFile(ctx, "b/f"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := st.DeleteFile(ctx, "../x"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("bad handle: %v", err)
	}
}
