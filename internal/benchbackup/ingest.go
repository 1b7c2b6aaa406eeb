package benchbackup

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// IngestResult says what IngestState loaded.
type IngestResult struct {
	Items int64 `json:"items"`
	// LogicalBytes is the sum of the keys' and values' lengths: the logical state.
	LogicalBytes int64 `json:"logical_bytes"`
}

// IngestState is the unverified ceiling of a state restore: it streams the state
// items of the node store in srcDir at version v (key-hash order, as a snapshot holds
// them), writes them as state value records keyed like ledgerdb's (each key hashed
// once) into SSTables of at most 64 MiB, and ingests them into a fresh Pebble store
// in dstDir. Nothing is verified and no tree is built.
func IngestState(ctx context.Context, srcDir string, v uint64, dstDir string) (IngestResult, error) {
	src, err := ledgerdb.Open(ctx, srcDir, ledgerdb.Options{})
	if err != nil {
		return IngestResult{}, fmt.Errorf("open node store: %w", err)
	}
	defer src.Close()
	opts := &pebble.Options{Logger: quietLogger{}, FormatMajorVersion: pebble.FormatNewest}
	opts.EnsureDefaults()
	pdb, err := pebble.Open(dstDir, opts)
	if err != nil {
		return IngestResult{}, fmt.Errorf("open %s: %w", dstDir, err)
	}
	defer pdb.Close()
	tmp := filepath.Join(dstDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return IngestResult{}, err
	}
	var (
		res   IngestResult
		paths []string
		w     *sstable.Writer
		size  int64
		key   []byte
		val   []byte
	)
	flush := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	err = src.StateValues(ctx, v, 0, 0, func(_ uint64, k, value []byte) error {
		if w == nil {
			var rnd [8]byte
			rand.Read(rnd[:])
			p := filepath.Join(tmp, hex.EncodeToString(rnd[:])+".sst")
			f, err := opts.FS.Create(p, "")
			if err != nil {
				return err
			}
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts.MakeWriterOptions(0, pdb.TableFormat()))
			paths = append(paths, p)
			size = 0
		}
		kh := smt.KeyHash(k)
		key = binary.BigEndian.AppendUint64(append(append(key[:0], 0x05), kh[:]...), ^v)
		val = append(binary.AppendUvarint(append(val[:0], 0), uint64(len(k))), k...)
		val = append(val, value...)
		if err := w.Set(key, val); err != nil {
			return err
		}
		res.Items++
		res.LogicalBytes += int64(len(k) + len(value))
		size += int64(len(key) + len(val))
		if size >= 64<<20 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	} else if w != nil {
		w.Close()
	}
	if err != nil {
		return res, fmt.Errorf("build tables: %w", err)
	}
	if err := pdb.Ingest(ctx, paths); err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	return res, nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
