package native

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ledgervault/ledgervault/storage"
)

// FormatVersion is the version of the manifest and metadata formats written here.
const FormatVersion = 1

// Size limits of the JSON files; decoders refuse larger input before parsing.
const (
	// MaxManifestSize bounds an encoded manifest.
	MaxManifestSize = 64 << 20
	// MaxMetadataSize bounds a metadata file (a compacted one holds many lines).
	MaxMetadataSize = 16 << 20
	// MaxChunks bounds the chunks of one manifest.
	MaxChunks = 1 << 20
)

// ErrInvalid marks a manifest or metadata file that is malformed or inconsistent.
var ErrInvalid = errors.New("invalid backup file")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Digest is a SHA-256 digest, hex-encoded in JSON.
type Digest [32]byte

// MarshalText encodes the digest as 64 hex characters.
func (d Digest) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(d[:])), nil }

// UnmarshalText decodes 64 hex characters.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return invalidf("digest %q: want 64 hex characters", truncate(b))
	}
	if _, err := hex.Decode(d[:], b); err != nil {
		return invalidf("digest %q: %v", truncate(b), err)
	}
	return nil
}

// String returns the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// File describes one file of a backup: its handle, stored (compressed) size, size of
// its decompressed records, and the SHA-256 of the stored bytes.
type File struct {
	Handle  storage.FileHandle `json:"handle"`
	Size    int64              `json:"size"`
	RawSize int64              `json:"raw_size"`
	SHA256  Digest             `json:"sha256"`
}

func (f *File) validate(what string) error {
	if err := storage.ValidateHandle(string(f.Handle)); err != nil {
		return invalidf("%s: %v", what, err)
	}
	if f.Size < 0 || f.RawSize < 0 {
		return invalidf("%s %s: negative size", what, f.Handle)
	}
	return nil
}

// decodeStrict decodes exactly one JSON value of at most limit bytes into v, refusing
// unknown fields and trailing data.
func decodeStrict(b []byte, limit int, what string, v any) error {
	if len(b) > limit {
		return invalidf("%s: %d bytes exceeds the limit of %d", what, len(b), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf("%s: %v", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf("%s: trailing data after the JSON value", what)
	}
	return nil
}

// ReadLimited reads all of r, failing once more than limit bytes arrive.
func ReadLimited(r io.Reader, limit int, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > limit {
		return nil, invalidf("%s: larger than the limit of %d bytes", what, limit)
	}
	return b, nil
}
