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
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/records"
)

// shellConfig is a command configuration over a local directory with the layout of
// the local backend (folders at the root, metadata/ for metadata) whose uploads are
// multi-process pipelines into a hidden temp file, linked to the final name only
// when every stage succeeded (as in internal/killcampaign).
const shellConfig = `env_vars:
  - key: "ROOT"
    value: %q
commands:
  create_backup: |
    mkdir -p -- "$ROOT"
    mkdir -- "$ROOT/$BACKUP_NAME"
    echo "$BACKUP_NAME"
  create_for_write: |
    FILE_HANDLE="$BACKUP_HANDLE/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    DIR="$ROOT/$BACKUP_HANDLE"
    TMP="$(mktemp -- "$DIR/.tmp-$FILE_NAME-XXXXXXXX")"
    gzip -1 | gzip -d | cat > "$TMP"
    ST=("${PIPESTATUS[@]}")
    if [ "${ST[0]}" != 0 ] || [ "${ST[1]}" != 0 ] || [ "${ST[2]}" != 0 ]; then rm -f -- "$TMP"; exit 1; fi
    if ln -T -- "$TMP" "$ROOT/$FILE_HANDLE"; then
      rm -f -- "$TMP"
    else
      rm -f -- "$TMP"
      if [ -e "$ROOT/$FILE_HANDLE" ]; then exit 17; fi
      exit 1
    fi
  open_for_read: |
    F="$ROOT/$FILE_HANDLE"
    if [ ! -f "$F" ]; then echo "not found: $FILE_HANDLE" >&2; exit 44; fi
    cat -- "$F"
  save_metadata_line: |
    FILE_HANDLE="metadata/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    mkdir -p -- "$ROOT/metadata"
    TMP="$(mktemp -- "$ROOT/metadata/.tmp-$FILE_NAME-XXXXXXXX")"
    cat > "$TMP" || { rm -f -- "$TMP"; exit 1; }
    if ln -T -- "$TMP" "$ROOT/$FILE_HANDLE"; then
      rm -f -- "$TMP"
    else
      rm -f -- "$TMP"
      if [ -e "$ROOT/$FILE_HANDLE" ]; then exit 17; fi
      exit 1
    fi
  list_metadata_files: |
    mkdir -p -- "$ROOT/metadata"
    cd -- "$ROOT/metadata"
    shopt -s nullglob
    for f in *; do
      if [ -f "$f" ]; then printf 'metadata/%%s\n' "$f"; fi
    done
  backup_metadata_file: |
    mkdir -p -- "$ROOT/metadata_backup"
    mv -n -- "$ROOT/metadata/$FILE_NAME" "$ROOT/metadata_backup/$FILE_NAME"
  delete_metadata: |
    F="$ROOT/$FILE_HANDLE"
    if [ ! -f "$F" ]; then echo "not found: $FILE_HANDLE" >&2; exit 44; fi
    rm -f -- "$F"
  list_backups: |
    mkdir -p -- "$ROOT"
    cd -- "$ROOT"
    shopt -s nullglob
    for d in */; do
      d="${d%%/}"
      if [ "$d" = metadata ] || [ "$d" = metadata_backup ]; then continue; fi
      printf '%%s\t%%s\t%%s\n' "$d" "$(stat -c %%Y -- "$d")" "$(du -sb -- "$d" | cut -f1)"
    done
  delete_backup: |
    if [ ! -d "$ROOT/$BACKUP_HANDLE" ]; then echo "not found: $BACKUP_HANDLE" >&2; exit 44; fi
    rm -rf -- "$ROOT/$BACKUP_HANDLE"
`

// shellStorage writes a command configuration over root and returns the storage
// flags that use it.
func shellStorage(t *testing.T, root string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "commands.yaml")
	if err := os.WriteFile(p, fmt.Appendf(nil, shellConfig, root), 0o644); err != nil {
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
