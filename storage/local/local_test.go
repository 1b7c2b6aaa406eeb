package local_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t *testing.T) storage.Store {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, newStore, storagetest.Options{StaleLeftovers: true})
}

func TestPermanentErrors(t *testing.T) {
	if os.Geteuid() == 0 {
		// root bypasses permission bits; sysfs refuses mkdir with EPERM.
		st, err := local.New("/sys/ledgervault-test")
		if err == nil {
			st.Close()
			t.Fatal("New under /sys succeeded")
		}
		if !storage.IsPermanent(err) {
			t.Fatalf("New under /sys: %v, want a permanent error", err)
		}
		return
	}
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, err := st.CreateBackup(t.Context(), "x"); !storage.IsPermanent(err) {
		t.Fatalf("CreateBackup in a read-only folder: %v, want permanent", err)
	}
}
