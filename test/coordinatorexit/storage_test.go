package coordinatorexit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/killcampaign"
)

// shellStorage writes a command configuration over root whose uploads and reads are
// multi-process pipelines (the kill campaign's) and returns the storage flags that
// use it.
func shellStorage(t *testing.T, root string) []string {
	t.Helper()
	p, err := killcampaign.WriteShellConfig(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"--command-config", p}
}

// metadataNames returns the names of the metadata files in root with the given
// prefix.
func metadataNames(t *testing.T, root, prefix string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(root, "metadata"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".meta") {
			out = append(out, e.Name())
		}
	}
	return out
}

// snapshotChunks returns how many state chunks (final names) the snapshot folders
// in root hold.
func snapshotChunks(root string) int {
	m, _ := filepath.Glob(filepath.Join(root, "state_snapshot_ver_*", "state-*.zst"))
	return len(m)
}

// checkSnapshotFolders checks every file under a final name in root with the kill
// campaign's storage check: each must be complete (a chunk decodes to its trailer, a
// proof, manifest, metadata or lease decodes, a referenced file matches its
// manifest) and of a kind the check knows. It returns the number of state chunks.
func checkSnapshotFolders(t *testing.T, root string) int {
	t.Helper()
	c, err := killcampaign.CheckDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bad() != 0 || c.Unknown != 0 {
		t.Fatalf("files under a final name not complete: %q; of an unknown kind: %q", c.Problems, c.UnknownFiles)
	}
	n := snapshotChunks(root)
	if c.Files < n {
		t.Fatalf("the check saw %d files under final names, fewer than the %d state chunks", c.Files, n)
	}
	return n
}
