// Package shutdown holds the two-step shutdown every long-running piece of
// ledgervault shares: the first step (a first SIGINT/SIGTERM, or the parent context
// ending) stops new work and starts the grace period; the second (a second signal, or
// the grace period running out) aborts the work in flight now.
//
// A Shutdown has two contexts: Stopping, done at the first step, and Aborting, done
// at the second. Code that starts work checks Stopping; work in flight runs under
// Aborting.
package shutdown

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrGraceExpired is the cause of Aborting when the grace period ran out after Stop.
var ErrGraceExpired = errors.New("shutdown grace period expired")

// ErrAborted is the cause of Aborting when Abort was called with a nil cause.
var ErrAborted = errors.New("shutdown: aborted")

// Shutdown is a two-step shutdown; see the package documentation. Its methods are
// safe for concurrent use.
type Shutdown struct {
	stopping    context.Context
	cancelStop  context.CancelFunc
	aborting    context.Context
	cancelAbort context.CancelCauseFunc
	grace       time.Duration
	stopParent  func() bool

	mu     sync.Mutex
	timer  *time.Timer
	closed bool

	watch *watcher // nil unless made by Watch
}

// New returns a Shutdown. Stopping is done when Stop is called or parent is done.
// Aborting is done when Abort is called, or grace after the first step: at once for
// grace 0, never by itself for a negative grace. Aborting does not end with parent:
// work in flight keeps running through the grace period. Close releases the timer.
func New(parent context.Context, grace time.Duration) *Shutdown {
	s := &Shutdown{grace: grace}
	s.stopping, s.cancelStop = context.WithCancel(parent)
	s.aborting, s.cancelAbort = context.WithCancelCause(context.WithoutCancel(parent))
	s.stopParent = context.AfterFunc(parent, s.Stop)
	return s
}

// Stopping returns the context that is done at the first step: start no new work.
func (s *Shutdown) Stopping() context.Context { return s.stopping }

// Aborting returns the context that is done at the second step: abort the work in
// flight. context.Cause tells why (ErrGraceExpired, or the cause given to Abort).
func (s *Shutdown) Aborting() context.Context { return s.aborting }

// Stop takes the first step (once): Stopping is done and the grace period starts.
func (s *Shutdown) Stop() {
	s.cancelStop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil || s.closed || s.aborting.Err() != nil {
		return
	}
	switch {
	case s.grace == 0:
		s.cancelAbort(ErrGraceExpired)
	case s.grace > 0:
		s.timer = time.AfterFunc(s.grace, func() { s.cancelAbort(ErrGraceExpired) })
	}
}

// Abort takes the second step now: both contexts are done, Aborting with cause
// (ErrAborted if nil). Only the first cause counts.
func (s *Shutdown) Abort(cause error) {
	if cause == nil {
		cause = ErrAborted
	}
	s.cancelAbort(cause)
	s.cancelStop()
}

// Close releases the grace timer and, for a Shutdown made by Watch, stops watching
// signals; it waits for the watcher. Both contexts are done afterwards (with cause
// context.Canceled if nothing else ended them first).
func (s *Shutdown) Close() {
	if s.watch != nil {
		s.watch.stop()
	}
	s.stopParent()
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.cancelStop()
	s.cancelAbort(context.Canceled)
}
