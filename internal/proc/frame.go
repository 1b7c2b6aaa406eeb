package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The guard's stdin carries frames: a 1-byte type, a 4-byte big-endian payload
// length, then the payload. Data frames carry at most MaxFrame bytes; the commit frame
// is empty and ends the stream.
const (
	frameData   byte = 'D'
	frameCommit byte = 'C'
	// MaxFrame bounds a data frame's payload.
	MaxFrame  = 1 << 20
	headerLen = 5
)

// errBadFrame reports a malformed frame on the guard's stdin.
var errBadFrame = errors.New("bad guard frame")

// readFrame reads one frame into buf (len(buf) >= MaxFrame) and returns its type and
// payload. A clean EOF before a header is io.EOF; a torn frame is
// io.ErrUnexpectedEOF.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	switch hdr[0] {
	case frameData:
		if n == 0 || n > MaxFrame {
			return 0, nil, fmt.Errorf("%w: data frame of %d bytes (1..%d)", errBadFrame, n, MaxFrame)
		}
	case frameCommit:
		if n != 0 {
			return 0, nil, fmt.Errorf("%w: commit frame with %d bytes of payload", errBadFrame, n)
		}
		return frameCommit, nil, nil
	default:
		return 0, nil, fmt.Errorf("%w: unknown type %#x", errBadFrame, hdr[0])
	}
	p := buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return frameData, p, nil
}

// writeFrame writes one frame.
func writeFrame(w io.Writer, typ byte, p []byte) error {
	var hdr [headerLen]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(p) > 0 {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}
