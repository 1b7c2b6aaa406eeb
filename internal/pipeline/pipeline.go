// Package pipeline runs work items with ordered, bounded concurrency.
//
// Ordered takes a stream of items, runs at most Workers of them at once, holds at most
// Buffered finished results waiting for the consumer, and hands results to the consumer
// in input order. The first error (from the source, a worker or the consumer) cancels
// everything else; a panic in any stage becomes an error; and Ordered returns only after
// every goroutine it started has returned, whatever happened. Nothing it starts can
// outlive the call, so a dropped or failed pipeline never leaves work running.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"golang.org/x/sync/errgroup"
)

// Options bounds a pipeline.
type Options struct {
	// Workers is the most work calls running at once (at least 1).
	Workers int
	// Buffered is the most finished results held while waiting for the consumer
	// (0 means results wait only in their worker slots).
	Buffered int
}

// Source yields the next item; ok is false at the end of the stream.
type Source[In any] func(ctx context.Context) (item In, ok bool, err error)

// Work turns one item into a result.
type Work[In, Out any] func(ctx context.Context, item In) (Out, error)

// Sink consumes results in input order.
type Sink[Out any] func(ctx context.Context, result Out) error

// ErrPanic marks an error that was a recovered panic.
var ErrPanic = errors.New("panic in pipeline stage")

type slot[Out any] struct {
	done chan struct{}
	out  Out
	err  error
}

// Ordered runs work over every item of src and passes the results to sink in input
// order, with the bounds of opts. It returns the first error, after every goroutine it
// started has returned.
func Ordered[In, Out any](ctx context.Context, opts Options, src Source[In], work Work[In, Out], sink Sink[Out]) error {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.Buffered < 0 {
		opts.Buffered = 0
	}
	window := opts.Workers + opts.Buffered
	g, gctx := errgroup.WithContext(ctx)
	// tokens limits items dispatched but not yet consumed; running limits work calls.
	tokens := make(chan struct{}, window)
	running := make(chan struct{}, opts.Workers)
	queue := make(chan *slot[Out], window)

	g.Go(func() (err error) {
		defer close(queue)
		defer recoverTo(&err, "source")
		for {
			select {
			case tokens <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			item, ok, err := src(gctx)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			select {
			case running <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			s := &slot[Out]{done: make(chan struct{})}
			queue <- s // never blocks: at most window slots exist
			g.Go(func() (err error) {
				defer func() { <-running }()
				defer close(s.done)
				defer func() { s.err = err }()
				defer recoverTo(&err, "worker")
				s.out, err = work(gctx, item)
				return err
			})
		}
	})

	g.Go(func() (err error) {
		defer recoverTo(&err, "sink")
		for s := range queue {
			select {
			case <-s.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if s.err != nil {
				return s.err
			}
			if err := sink(gctx, s.out); err != nil {
				return err
			}
			var zero Out
			s.out = zero
			<-tokens
		}
		return nil
	})

	return g.Wait()
}

// Map runs work over items with the bounds of opts and returns the results in order.
func Map[In, Out any](ctx context.Context, opts Options, items []In, work Work[In, Out]) ([]Out, error) {
	out := make([]Out, 0, len(items))
	i := 0
	src := func(context.Context) (In, bool, error) {
		if i >= len(items) {
			var zero In
			return zero, false, nil
		}
		i++
		return items[i-1], true, nil
	}
	err := Ordered(ctx, opts, src, work, func(_ context.Context, o Out) error {
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// recoverTo turns a panic in the calling stage into an error stored in *err.
func recoverTo(err *error, stage string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w (%s): %v\n%s", ErrPanic, stage, r, debug.Stack())
	}
}
