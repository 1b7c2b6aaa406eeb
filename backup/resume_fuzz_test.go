package backup

import (
	"bytes"
	"context"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/records"
)

// FuzzDecodeStateChunk feeds arbitrary bytes to the reader of an interrupted
// attempt's chunks: it must fail cleanly or return at most maxItems leaves and the
// exact size of its input.
func FuzzDecodeStateChunk(f *testing.F) {
	var good bytes.Buffer
	enc, err := zstd.NewWriter(&good, zstd.WithEncoderLevel(native.DefaultCompressionLevel), zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	rw := records.NewWriter(enc)
	for i := range 5 {
		rec := make([]byte, records.KeyValueSize([]byte{byte(i)}, []byte("value")))
		records.PutKeyValue(rec, []byte{byte(i)}, []byte("value"))
		if err := rw.WriteRecord(rec); err != nil {
			f.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		f.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()/2])
	f.Add(append(bytes.Clone(good.Bytes()), 0))
	f.Add([]byte{})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		leaves, file, err := decodeStateChunk(context.Background(), bytes.NewReader(data), "f/x.zst", 3)
		if err != nil {
			return
		}
		if len(leaves) == 0 || len(leaves) > 3 || file.Size != int64(len(data)) {
			t.Fatalf("%d leaves, size %d of %d bytes", len(leaves), file.Size, len(data))
		}
	})
}
