package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// FuzzCacheFile feeds arbitrary cache file contents to the decoder: it must never
// panic, and whatever it accepts must be exactly what storage's bytes decode to.
func FuzzCacheFile(f *testing.F) {
	const h = storage.FileHandle("metadata/a.meta")
	good := []byte(`{"format":1,"type":"transaction","first_version":1,"last_version":2,"manifest":"f/m.json"}` + "\n")
	f.Add(encode(h, good))
	f.Add(encode("metadata/other.meta", good))
	f.Add(encode(h, []byte("{nope")))
	f.Add(encode(h, append(good, good...)))
	f.Add([]byte(magic + " 00 metadata%2Fa.meta\n"))
	f.Add([]byte{})
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := decode(h, b)
		if err != nil {
			return
		}
		body := b[bytes.IndexByte(b, '\n')+1:]
		if sum := sha256.Sum256(body); !bytes.Contains(b, []byte(hex.EncodeToString(sum[:]))) {
			t.Fatalf("accepted %q without its body's checksum", b)
		}
		want, err := native.DecodeMetadataFile(string(h), body)
		if err != nil || !reflect.DeepEqual(ms, want) {
			t.Fatalf("cache decode %+v differs from storage decode %+v (%v)", ms, want, err)
		}
	})
}

func TestCacheNames(t *testing.T) {
	long := bytes.Repeat([]byte("a/"), storage.MaxHandleLen/2-1)
	for _, h := range []storage.FileHandle{"metadata/a.meta", "x/../../etc/passwd.meta", storage.FileHandle(long) + "b.meta", "%2F.meta"} {
		n := fileName(h)
		if !isCacheName(n) || len(n) > 255 {
			t.Errorf("fileName(%q) = %q", h, n)
		}
		ms, err := decode(h, encode(h, []byte(`{"format":1,"type":"state_snapshot","version":3,"manifest":"f/m.json"}`)))
		if err != nil || len(ms) != 1 || ms[0].Version != 3 {
			t.Errorf("round trip of %q: %v %v", h, ms, err)
		}
	}
	for _, n := range []string{"", ".meta", "README", fileName("a")[:10], "G" + fileName("a")[1:], fileName("a") + "x"} {
		if isCacheName(n) {
			t.Errorf("isCacheName(%q)", n)
		}
	}
}
