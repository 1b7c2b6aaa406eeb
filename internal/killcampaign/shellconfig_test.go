package killcampaign

import (
	"bytes"
	"testing"

	"github.com/ledgervault/ledgervault/storage/shell"
)

// TestShellConfigListsFiles checks that the campaign's command config lists a
// folder's committed files (list_files), which resume needs to find an interrupted
// attempt's chunks: without it every resumed snapshot would start afresh.
func TestShellConfigListsFiles(t *testing.T) {
	p, err := WriteShellConfig(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := shell.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	b, err := st.CreateBackup(ctx, "state_snapshot_ver_1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Create(ctx, b, "state-000000000000.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(bytes.Repeat([]byte{7}, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	files, err := st.ListFiles(ctx, b)
	if err != nil {
		t.Fatalf("ListFiles: %v", err)
	}
	if len(files) != 1 || files[0].Handle != w.Handle() || files[0].Size != 1000 {
		t.Fatalf("listed %+v, want %s of 1000 bytes", files, w.Handle())
	}
}
