package aptosverify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// Prefetch limits: epoch-ending chunks are read ahead of the chain walk, a few at once
// (through a command adapter each read is a process), each kept whole in memory only
// when it is small.
const (
	prefetchWindow   = 8
	maxPrefetchBytes = 4 << 20
)

// fetched is one chunk read ahead.
type fetched struct {
	data    []byte // decompressed content, when it fits maxPrefetchBytes
	tooBig  bool   // over maxPrefetchBytes: the reader streams it instead
	raw     int64  // bytes the store returned
	openErr error  // the file could not be opened (missing, unreachable)
	readErr error  // it could not be read or decompressed completely
}

// prefetcher reads a planned sequence of files ahead of their consumer, at most
// prefetchWindow results in memory. Every goroutine it starts has returned when close
// returns.
type prefetcher struct {
	plan    []storage.FileHandle
	index   map[storage.FileHandle]int
	results []chan fetched
	slots   chan struct{}
	pos     int
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newPrefetcher(ctx context.Context, v *verifier, plan []storage.FileHandle) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{plan: plan, index: map[storage.FileHandle]int{}, results: make([]chan fetched, len(plan)),
		slots: make(chan struct{}, prefetchWindow), cancel: cancel}
	for i, h := range plan {
		if _, dup := p.index[h]; !dup {
			p.index[h] = i
		}
		p.results[i] = make(chan fetched, 1)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i, h := range plan {
			select {
			case p.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.results[i] <- fetch(ctx, v, h)
			}()
		}
	}()
	return p
}

func fetch(ctx context.Context, v *verifier, h storage.FileHandle) fetched {
	rd, closer, cr, err := v.open(ctx, h)
	if err != nil {
		return fetched{openErr: err}
	}
	defer closer.Close()
	data, err := io.ReadAll(io.LimitReader(rd, maxPrefetchBytes+1))
	if err != nil {
		return fetched{readErr: fmt.Errorf("read %s: %w", h, err), raw: cr.n}
	}
	if len(data) > maxPrefetchBytes {
		return fetched{tooBig: true}
	}
	return fetched{data: data, raw: cr.n}
}

// take returns the read-ahead result of h, or ok false when h is not ahead in the plan
// (the caller opens it itself). Results passed over are dropped.
func (p *prefetcher) take(ctx context.Context, h storage.FileHandle) (f fetched, ok bool) {
	i, planned := p.index[h]
	if !planned || i < p.pos {
		return fetched{}, false
	}
	for ; p.pos <= i; p.pos++ {
		select {
		case f = <-p.results[p.pos]:
			<-p.slots
		case <-ctx.Done():
			return fetched{}, false
		}
	}
	return f, true
}

func (p *prefetcher) close() {
	p.cancel()
	p.wg.Wait()
}

// openChunk opens an epoch-ending chunk through the prefetcher when it has it.
func (s *endingSource) openChunk(ctx context.Context, h storage.FileHandle) (*backupcli.Records, io.Closer, *countingReader, error) {
	if s.pf != nil {
		if f, ok := s.pf.take(ctx, h); ok && !f.tooBig {
			switch {
			case f.openErr != nil:
				return nil, nil, nil, f.openErr
			case f.readErr != nil:
				return nil, nil, nil, f.readErr
			}
			return recordsOf(bytes.NewReader(f.data)), io.NopCloser(nil), &countingReader{n: f.raw}, nil
		}
	}
	rd, closer, cr, err := s.v.open(ctx, h)
	if err != nil {
		return nil, nil, nil, err
	}
	return recordsOf(rd), closer, cr, nil
}
