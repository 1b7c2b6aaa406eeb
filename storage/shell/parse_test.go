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

func TestParseFiles(t *testing.T) {
	files, err := parseFiles([]byte("b-1/z\t1700000002\t0\r\nb-1/a\t1700000001\t42\n\n"))
	if err != nil || len(files) != 2 || files[0].Handle != "b-1/a" || files[0].Size != 42 ||
		files[0].ModTime.Unix() != 1700000001 || files[1].Handle != "b-1/z" || files[1].Size != 0 {
		t.Fatalf("parseFiles = %+v, %v", files, err)
	}
	if files, err := parseFiles(nil); err != nil || files == nil || len(files) != 0 {
		t.Fatalf("parseFiles(empty) = %#v, %v; want an empty list", files, err)
	}
	for _, bad := range []string{"../x\t1\t2\n", "a/b\tnot-a-time\t2\n", "a/b\t1\n", "a/b\t1\t-5\n",
		"a/b\t1\t2\t3\n", "a/b\t1\t2\na/b\t1\t2\n", "a/b\t-1\t2\n", "a/b\t1\tx\n"} {
		if _, err := parseFiles([]byte(bad)); err == nil {
			t.Errorf("parseFiles accepted %q", bad)
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
	f.Add([]byte("b-1/chunk-0\t1700000000\t1234\nb-1/manifest.json\t1700000001\t99\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if infos, err := parseBackups(in); err == nil {
			for _, i := range infos {
				if storage.ValidateHandle(string(i.Handle)) != nil || i.Size < 0 {
					t.Fatalf("parseBackups accepted %+v", i)
				}
			}
		}
		if files, err := parseFiles(in); err == nil {
			seen := map[storage.FileHandle]bool{}
			for _, f := range files {
				if storage.ValidateHandle(string(f.Handle)) != nil || f.Size < 0 || seen[f.Handle] {
					t.Fatalf("parseFiles accepted %+v", f)
				}
				seen[f.Handle] = true
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
