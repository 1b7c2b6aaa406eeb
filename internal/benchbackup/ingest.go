package benchbackup

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

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

// DumpState writes the state items of the node store in srcDir at version v, in
// key-hash order as a snapshot holds them, to the file path: each item a big-endian
// u32 key length, the key, a u32 value length and the value. It is the input of
// IngestState, written beforehand so that the ingest reads a flat file as a restore
// reads its chunks, not the node's store.
func DumpState(ctx context.Context, srcDir string, v uint64, path string) (IngestResult, error) {
	src, err := ledgerdb.Open(ctx, srcDir, ledgerdb.Options{})
	if err != nil {
		return IngestResult{}, fmt.Errorf("open node store: %w", err)
	}
	defer src.Close()
	f, err := os.Create(path)
	if err != nil {
		return IngestResult{}, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var res IngestResult
	var hdr [4]byte
	err = src.StateValues(ctx, v, 0, 0, func(_ uint64, k, value []byte) error {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(k)))
		w.Write(hdr[:])
		w.Write(k)
		binary.BigEndian.PutUint32(hdr[:], uint32(len(value)))
		w.Write(hdr[:])
		_, err := w.Write(value)
		res.Items++
		res.LogicalBytes += int64(len(k) + len(value))
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return res, fmt.Errorf("dump state at %d: %w", v, err)
	}
	return res, nil
}

// IngestState is the unverified ceiling of a state restore: it reads the items that
// DumpState wrote to pairs, writes them as state value records keyed like ledgerdb's
// (each key hashed once, at version v) into SSTables of at most 64 MiB, and ingests
// them into a fresh Pebble store in dstDir. Nothing is verified and no tree is built.
func IngestState(ctx context.Context, pairs string, v uint64, dstDir string) (IngestResult, error) {
	in, err := os.Open(pairs)
	if err != nil {
		return IngestResult{}, err
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 1<<20)
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
		k, vb []byte
	)
	flush := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	readField := func(dst []byte) ([]byte, error) {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return dst, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<26 {
			return dst, fmt.Errorf("field of %d bytes", n)
		}
		dst = slices.Grow(dst[:0], int(n))[:n]
		_, err := io.ReadFull(r, dst)
		return dst, err
	}
	for {
		if k, err = readField(k); err != nil {
			if err == io.EOF {
				err = nil
			}
			break
		}
		if vb, err = readField(vb); err != nil {
			break
		}
		if w == nil {
			var rnd [8]byte
			rand.Read(rnd[:])
			p := filepath.Join(tmp, hex.EncodeToString(rnd[:])+".sst")
			f, err := opts.FS.Create(p, "")
			if err != nil {
				return res, err
			}
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts.MakeWriterOptions(0, pdb.TableFormat()))
			paths = append(paths, p)
			size = 0
		}
		kh := smt.KeyHash(k)
		key = binary.BigEndian.AppendUint64(append(append(key[:0], 0x05), kh[:]...), ^v)
		val = append(binary.AppendUvarint(append(val[:0], 0), uint64(len(k))), k...)
		val = append(val, vb...)
		if err = w.Set(key, val); err != nil {
			break
		}
		res.Items++
		res.LogicalBytes += int64(len(k) + len(vb))
		size += int64(len(key) + len(val))
		if size >= 64<<20 {
			if err = flush(); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = flush()
	} else if w != nil {
		w.Close()
	}
	if err != nil {
		return res, fmt.Errorf("build tables from %s: %w", pairs, err)
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
