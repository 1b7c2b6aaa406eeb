package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

const (
	// maxHandleLine bounds the handle line a command prints.
	maxHandleLine = storage.MaxHandleLen + 1
	// maxListing bounds the output of a listing command.
	maxListing = 64 << 20
)

// errNoHandle reports a command that closed stdout without printing a handle.
var errNoHandle = errors.New("command printed no handle")

// readHandleLine reads the first line of r (at most maxHandleLine bytes) and
// validates it as a handle. Bytes after the first line are dropped.
func readHandleLine(r io.Reader) (string, error) {
	buf := make([]byte, 0, 256)
	tmp := make([]byte, 256)
	for {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[:i]
			break
		}
		if len(buf) > maxHandleLine {
			return "", fmt.Errorf("%w: handle line longer than %d bytes", storage.ErrInvalidName, maxHandleLine)
		}
		n, err := r.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err == io.EOF {
			if bytes.IndexByte(buf, '\n') >= 0 {
				continue
			}
			if len(buf) == 0 {
				return "", errNoHandle
			}
			break
		}
		if err != nil {
			return "", fmt.Errorf("read handle line: %w", err)
		}
	}
	if len(buf) > maxHandleLine {
		return "", fmt.Errorf("%w: handle line longer than %d bytes", storage.ErrInvalidName, maxHandleLine)
	}
	h := strings.TrimSpace(string(buf))
	if err := storage.ValidateHandle(h); err != nil {
		return "", err
	}
	return h, nil
}

// parseHandles parses a listing of one handle per line; empty lines are skipped.
func parseHandles(out []byte) ([]storage.FileHandle, error) {
	var hs []storage.FileHandle
	for i, line := range bytes.Split(out, []byte{'\n'}) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		if err := storage.ValidateHandle(s); err != nil {
			return nil, fmt.Errorf("listing line %d: %w", i+1, err)
		}
		hs = append(hs, storage.FileHandle(s))
	}
	return hs, nil
}

// parseBackups parses "handle<TAB>unix-mtime[<TAB>size]" lines.
func parseBackups(out []byte) ([]storage.BackupInfo, error) {
	var infos []storage.BackupInfo
	for i, line := range bytes.Split(out, []byte{'\n'}) {
		s := strings.TrimRight(string(line), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("list_backups line %d: want handle<TAB>mtime[<TAB>size], got %d fields", i+1, len(f))
		}
		if err := storage.ValidateHandle(f[0]); err != nil {
			return nil, fmt.Errorf("list_backups line %d: %w", i+1, err)
		}
		sec, err := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		if err != nil || sec < 0 || sec > 1<<40 {
			return nil, fmt.Errorf("list_backups line %d: bad mtime %q", i+1, f[1])
		}
		info := storage.BackupInfo{Handle: storage.BackupHandle(f[0]), ModTime: time.Unix(sec, 0)}
		if len(f) == 3 {
			sz, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
			if err != nil || sz < 0 {
				return nil, fmt.Errorf("list_backups line %d: bad size %q", i+1, f[2])
			}
			info.Size = sz
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// parseFiles parses "handle<TAB>unix-mtime<TAB>size" lines into FileInfo records
// sorted by handle; a handle listed twice is an error.
func parseFiles(out []byte) ([]storage.FileInfo, error) {
	files := []storage.FileInfo{}
	seen := map[storage.FileHandle]bool{}
	for i, line := range bytes.Split(out, []byte{'\n'}) {
		s := strings.TrimRight(string(line), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want handle<TAB>mtime<TAB>size, got %d fields", i+1, len(f))
		}
		if err := storage.ValidateHandle(f[0]); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		h := storage.FileHandle(f[0])
		if seen[h] {
			return nil, fmt.Errorf("line %d: %s listed twice", i+1, h)
		}
		seen[h] = true
		sec, err := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		if err != nil || sec < 0 || sec > 1<<40 {
			return nil, fmt.Errorf("line %d: bad mtime %q", i+1, f[1])
		}
		sz, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		if err != nil || sz < 0 {
			return nil, fmt.Errorf("line %d: bad size %q", i+1, f[2])
		}
		files = append(files, storage.FileInfo{Handle: h, ModTime: time.Unix(sec, 0), Size: sz})
	}
	slices.SortFunc(files, func(a, b storage.FileInfo) int { return strings.Compare(string(a.Handle), string(b.Handle)) })
	return files, nil
}

// parseCount parses the optional count printed by abort_stale_uploads.
func parseCount(out []byte) (int, error) {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return 0, nil
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("abort_stale_uploads: last line %q is not a count", s)
	}
	return n, nil
}
