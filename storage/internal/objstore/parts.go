package objstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// UploadFunc uploads part number num (1-based) and returns the identifier the final
// commit needs (an S3 ETag, an Azure block ID).
type UploadFunc func(ctx context.Context, num int, data []byte) (string, error)

// Parts cuts a byte stream into parts of a fixed size and uploads them with at most
// inFlight uploads running at once. Memory is bounded by (inFlight+1) part buffers.
// Parts is used from one goroutine; its own goroutines have all returned when Wait or
// Stop returns.
type Parts struct {
	parent context.Context // the caller's: stops new dispatches when cancelled
	ctx    context.Context // the uploads': not cancelled with parent, see NewParts
	cancel context.CancelFunc
	size   int
	upload UploadFunc
	start  func(ctx context.Context) error

	sem  chan struct{}
	free chan []byte
	buf  []byte
	next int // number of parts dispatched
	wg   sync.WaitGroup

	mu  sync.Mutex
	ids []string
	err error
}

// NewParts returns an uploader of parts of size bytes. start, if not nil, runs once
// before the first part is dispatched (for example to create the multipart upload).
//
// A cancelled ctx stops new parts from being dispatched, but uploads already in
// flight run on a context that keeps ctx's values and is cancelled only by Stop (after
// a grace period) or an upload error. The reason: a request cancelled on the client
// may still be completed by the server after the writer has cleaned up (a staged
// Azure block recreating the blob it just discarded, an S3 part landing after the
// abort), so clean-up is reliable only once in-flight requests have finished.
func NewParts(ctx context.Context, size, inFlight int, start func(context.Context) error, upload UploadFunc) *Parts {
	if inFlight < 1 {
		inFlight = 1
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Parts{
		parent: ctx, ctx: pctx, cancel: cancel, size: size, upload: upload, start: start,
		sem: make(chan struct{}, inFlight), free: make(chan []byte, inFlight+1),
	}
}

// Started reports whether any part has been dispatched.
func (p *Parts) Started() bool { return p.next > 0 }

// Buffered returns the bytes written but not yet dispatched.
func (p *Parts) Buffered() []byte { return p.buf }

// Err returns the first upload error, if any.
func (p *Parts) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Write buffers b, dispatching every full part.
func (p *Parts) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if err := p.Err(); err != nil {
			return n, err
		}
		if p.buf == nil {
			p.buf = p.takeBuffer(len(b))
		}
		k := min(p.size-len(p.buf), len(b))
		if len(p.buf)+k > cap(p.buf) {
			// Grow to at most the part size exactly, so full buffers can be reused;
			// grow fast, as every step leaves the old buffer as garbage.
			nb := make([]byte, len(p.buf), min(p.size, max(8*cap(p.buf), len(p.buf)+k)))
			copy(nb, p.buf)
			p.buf = nb
		}
		p.buf = append(p.buf, b[:k]...)
		b = b[k:]
		n += k
		if len(p.buf) == p.size {
			if err := p.dispatch(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// takeBuffer reuses a returned part buffer or allocates one. The first buffer starts
// small and grows up to the part size, as most files are small; once a part has been
// dispatched the file is large and later buffers are allocated at full size.
func (p *Parts) takeBuffer(want int) []byte {
	select {
	case b := <-p.free:
		return b[:0]
	default:
	}
	if p.next > 0 {
		return make([]byte, 0, p.size)
	}
	return make([]byte, 0, min(p.size, max(want, 64<<10)))
}

// Flush dispatches the buffered bytes as the last part. With nothing buffered it
// dispatches an empty part only when no part was dispatched yet.
func (p *Parts) Flush() error {
	if len(p.buf) == 0 && p.next > 0 {
		return nil
	}
	return p.dispatch()
}

func (p *Parts) dispatch() error {
	if err := p.parent.Err(); err != nil {
		p.setErr(err) // uploads in flight finish; see NewParts
		return err
	}
	if p.next == 0 && p.start != nil {
		if err := p.start(p.parent); err != nil {
			p.fail(err)
			return err
		}
	}
	select {
	case p.sem <- struct{}{}:
	case <-p.parent.Done():
		err := context.Cause(p.parent)
		p.setErr(err)
		return err
	case <-p.ctx.Done():
		err := p.Err()
		if err == nil {
			err = context.Cause(p.ctx)
		}
		return err
	}
	if err := p.Err(); err != nil {
		<-p.sem
		return err
	}
	p.next++
	num, data := p.next, p.buf
	p.buf = nil
	p.mu.Lock()
	p.ids = append(p.ids, "")
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		id, err := p.upload(p.ctx, num, data)
		if cap(data) == p.size {
			p.free <- data // never blocks: at most inFlight+1 full-size buffers exist
		}
		<-p.sem
		if err != nil {
			p.fail(fmt.Errorf("upload part %d: %w", num, err))
			return
		}
		p.mu.Lock()
		p.ids[num-1] = id
		p.mu.Unlock()
	}()
	return nil
}

var errNoID = errors.New("upload returned no identifier")

// fail records an upload error and cancels the other uploads.
func (p *Parts) fail(err error) {
	p.setErr(err)
	p.cancel()
}

// setErr records the first error.
func (p *Parts) setErr(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// Wait waits for every dispatched upload and returns the part identifiers in order,
// or the first error.
func (p *Parts) Wait() ([]string, error) {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	for i, id := range p.ids {
		if id == "" {
			return nil, fmt.Errorf("part %d: %w", i+1, errNoID)
		}
	}
	return p.ids, nil
}

// Stop waits up to grace for running uploads to finish, then cancels the rest and
// waits for them to return.
func (p *Parts) Stop(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	p.cancel()
	<-done
	p.buf = nil
}
