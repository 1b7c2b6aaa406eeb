package coordinatorexit

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/backup/manifest"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/internal/killcampaign"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/records"
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

// checkSnapshotFolders checks every file under a final name in the state snapshot
// folders of root: each must be complete (a chunk decodes to its trailer, a proof
// or manifest decodes). It returns the number of complete chunks.
func checkSnapshotFolders(t *testing.T, root string) int {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "state_snapshot_ver_*"))
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	for _, d := range dirs {
		es, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue // a temporary file: not visible
			}
			b, err := os.ReadFile(filepath.Join(d, name))
			if err != nil {
				t.Fatal(err)
			}
			base, _, _ := strings.Cut(name, ".")
			switch ext := path.Ext(name); {
			case strings.HasPrefix(base, "state-") && ext == ".zst":
				err = decodeChunk(b)
				chunks++
			case strings.HasPrefix(base, "state-") && ext == ".proof":
				_, err = smt.DecodeRangeProof(b)
			case base == "state_root" && ext == ".proof":
				_, err = backupservice.DecodeStateRootProof(b)
			case base == "manifest" && ext == ".json":
				_, err = manifest.DecodeStateSnapshot(b)
			default:
				err = fmt.Errorf("unexpected file")
			}
			if err != nil {
				t.Fatalf("%s/%s is not complete: %v", filepath.Base(d), name, err)
			}
		}
	}
	return chunks
}

// decodeChunk reads a chunk file to its records' trailer.
func decodeChunk(b []byte) error {
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return err
	}
	defer zr.Close()
	if err := zr.Reset(strings.NewReader(string(b))); err != nil {
		return err
	}
	rr := records.NewReader(io.LimitReader(zr, 64<<20), 0)
	for rr.Next() {
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("after %d records: %w", rr.Count(), err)
	}
	if !rr.Done() {
		return fmt.Errorf("ends after %d records without its trailer", rr.Count())
	}
	return nil
}
