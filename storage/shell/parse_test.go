package shell

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/storage"
)

func TestParseBackups(t *testing.T) {
	infos, err := parseBackups([]byte("a-1\t1700000000\t42\nb-2\t1700000001\n\n"))
	if err != nil || len(infos) != 2 || infos[0].Size != 42 || infos[1].ModTime.Unix() != 1700000001 {
		t.Fatalf("parseBackups = %+v, %v", infos, err)
	}
	for _, bad := range []string{"../x\t1\n", "a\tnot-a-time\n", "a\n", "a\t1\t-5\n", "a\t1\t2\t3\n"} {
		if _, err := parseBackups([]byte(bad)); err == nil {
			t.Errorf("parseBackups accepted %q", bad)
		}
	}
}

func TestReadHandleLine(t *testing.T) {
	h, err := readHandleLine(strings.NewReader("b-1/chunk-0\nmore output"))
	if err != nil || h != "b-1/chunk-0" {
		t.Fatalf("readHandleLine = %q, %v", h, err)
	}
	if _, err := readHandleLine(strings.NewReader("")); !errors.Is(err, errNoHandle) {
		t.Fatalf("empty: %v", err)
	}
	long := strings.Repeat("a", 5000) + "\n"
	if _, err := readHandleLine(strings.NewReader(long)); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("long line: %v", err)
	}
	if _, err := readHandleLine(strings.NewReader("/etc/passwd\n")); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("absolute: %v", err)
	}
}

func FuzzParseListings(f *testing.F) {
	f.Add([]byte("a-1\t1700000000\t42\nb\t0\n"))
	f.Add([]byte("metadata/x.json\nmetadata/y\n"))
	f.Add([]byte("../../etc\t1\n"))
	f.Add([]byte("a\x00b\n\t\t\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if infos, err := parseBackups(in); err == nil {
			for _, i := range infos {
				if storage.ValidateHandle(string(i.Handle)) != nil || i.Size < 0 {
					t.Fatalf("parseBackups accepted %+v", i)
				}
			}
		}
		if hs, err := parseHandles(in); err == nil {
			for _, h := range hs {
				if storage.ValidateHandle(string(h)) != nil {
					t.Fatalf("parseHandles accepted %q", h)
				}
			}
		}
		if h, err := readHandleLine(bytes.NewReader(in)); err == nil {
			if storage.ValidateHandle(h) != nil || len(h) > storage.MaxHandleLen {
				t.Fatalf("readHandleLine accepted %q", h)
			}
		}
		parseCount(in)
		ParseConfig(in)
	})
}
