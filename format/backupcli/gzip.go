package backupcli

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// DefaultMaxDecompressed bounds the decompressed size of one gzip-wrapped file.
const DefaultMaxDecompressed = 4 << 30

// ErrCorrupt reports a gzip stream whose bytes are damaged (a bad header, corrupt
// deflate data, a CRC or length mismatch, garbage after a member): it does not
// decode, but unlike ErrPartial it is not merely cut short.
var ErrCorrupt = errors.New("corrupt gzip stream")

// gzipMagic starts every gzip member (RFC 1952).
var gzipMagic = [2]byte{0x1f, 0x8b}

// IsGzip reports whether b starts with the gzip magic.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == gzipMagic[0] && b[1] == gzipMagic[1] }

// Decompress returns what r holds without an operator's gzip layer: when r starts
// with the gzip magic, a reader of the decompressed stream (concatenated members
// are one stream, as `gzip -cd` reads them); otherwise r's bytes unchanged.
// gzipped says which. The decompressed reader fails with ErrPartial when the stream
// is cut short, ErrCorrupt when it is damaged, and ErrTooLarge past maxSize bytes
// (0: DefaultMaxDecompressed).
//
// A plain backup-cli file never starts with 1f 8b: manifests and metadata are JSON
// ('{'), and a chunk would need a first record of over 500 MB.
func Decompress(r io.Reader, maxSize int64) (out io.Reader, gzipped bool, err error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxDecompressed
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(2)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, false, err
	}
	if !IsGzip(head) {
		return br, false, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, true, gzipError(err)
	}
	return &gunzipReader{zr: zr, left: maxSize, max: maxSize}, true, nil
}

type gunzipReader struct {
	zr   *gzip.Reader
	left int64
	max  int64
	err  error
}

func (g *gunzipReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if int64(len(p)) > g.left+1 {
		p = p[:g.left+1]
	}
	n, err := g.zr.Read(p)
	if int64(n) > g.left {
		n = int(g.left)
		g.err = fmt.Errorf("%w: decompressed size exceeds %d bytes", ErrTooLarge, g.max)
		g.left = 0
		return n, g.err
	}
	g.left -= int64(n)
	if err != nil && err != io.EOF {
		g.err = gzipError(err)
		return n, g.err
	}
	if err == io.EOF {
		g.err = io.EOF
	}
	return n, err
}

// gzipError classifies a gzip decoding failure.
func gzipError(err error) error {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF:
		return fmt.Errorf("%w: gzip stream ends early (truncated)", ErrPartial)
	case errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	case errors.Is(err, gzip.ErrHeader):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	case errors.As(err, &ce):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}
