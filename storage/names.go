package storage

import (
	"fmt"
	"strings"
)

// MaxNameLen bounds names and each segment of a handle.
const MaxNameLen = 200

// MaxHandleLen bounds a whole file handle.
const MaxHandleLen = 1024

// ValidateName checks a backup, file or metadata name against the shell-safe grammar
// [A-Za-z0-9][A-Za-z0-9._-]* of at most MaxNameLen bytes.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q: length must be 1..%d", ErrInvalidName, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == '-'
		}
		if !ok {
			return fmt.Errorf("%w: %q: only letters, digits and ._- (not first) are allowed", ErrInvalidName, name)
		}
	}
	return nil
}

// ValidateHandle checks a file or backup handle read back from storage or a manifest:
// relative, slash-separated, no empty, "." or ".." segments, no backslashes, no control
// characters, at most MaxHandleLen bytes.
func ValidateHandle(h string) error {
	if h == "" || len(h) > MaxHandleLen {
		return fmt.Errorf("%w: handle %q: length must be 1..%d", ErrInvalidName, h, MaxHandleLen)
	}
	if strings.HasPrefix(h, "/") {
		return fmt.Errorf("%w: handle %q: absolute path", ErrInvalidName, h)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("%w: handle %q: control character or backslash", ErrInvalidName, h)
		}
	}
	for _, seg := range strings.Split(h, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: handle %q: empty segment", ErrInvalidName, h)
		case ".", "..":
			return fmt.Errorf("%w: handle %q: %q segment", ErrInvalidName, h, seg)
		}
	}
	return nil
}
