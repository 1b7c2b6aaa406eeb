package shutdown

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Options configures Watch.
type Options struct {
	// Grace is how long the work in flight may continue after the first signal before
	// Aborting is done (0: with the first signal; negative: only at the second).
	Grace time.Duration
	// Logger logs the signals (default: discard).
	Logger *slog.Logger
	// Exit, if set, is called with ExitCode(sig) once the second signal sig has
	// aborted: for commands whose work in flight does not end on cancellation (a
	// shell upload that is committing, a node finishing its block), which must
	// still end at once. main passes os.Exit.
	Exit func(code int)
	// Signals, if set, delivers the signals instead of the operating system's
	// SIGINT and SIGTERM (tests inject them here).
	Signals <-chan os.Signal
}

// SignalError is the cause of Aborting after a second signal.
type SignalError struct {
	// Signal is the second signal.
	Signal os.Signal
}

// Error says which signal aborted.
func (e *SignalError) Error() string { return fmt.Sprintf("aborted by a second signal (%v)", e.Signal) }

// ExitCode returns the conventional exit status after signal sig: 128 + its number
// (130 for SIGINT, 143 for SIGTERM), or 1 for a signal without a number.
func ExitCode(sig os.Signal) int {
	if n, ok := sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// watcher turns signals into the steps of a Shutdown.
type watcher struct {
	sigs   <-chan os.Signal
	notify chan os.Signal // registered with signal.Notify; nil when injected
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu            sync.Mutex
	first, second os.Signal
}

// Watch returns a Shutdown (New(parent, o.Grace)) driven by SIGINT and SIGTERM: the
// first signal takes the first step, the second aborts now with a *SignalError
// cause (and calls o.Exit if set). Close stops watching.
func Watch(parent context.Context, o Options) *Shutdown {
	s := New(parent, o.Grace)
	w := &watcher{sigs: o.Signals, quit: make(chan struct{}), done: make(chan struct{})}
	if w.sigs == nil {
		w.notify = make(chan os.Signal, 2)
		signal.Notify(w.notify, syscall.SIGINT, syscall.SIGTERM)
		w.sigs = w.notify
	}
	s.watch = w
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	go w.run(s, log, o.Exit)
	return s
}

func (w *watcher) run(s *Shutdown, log *slog.Logger, exit func(int)) {
	defer close(w.done)
	for {
		var sig os.Signal
		select {
		case sig = <-w.sigs:
		case <-w.quit:
			return
		}
		w.mu.Lock()
		first := w.first == nil
		if first {
			w.first = sig
		} else {
			w.second = sig
		}
		w.mu.Unlock()
		if first {
			log.Info("signal received: stopping; a second signal aborts at once", "signal", sig.String())
			s.Stop()
			continue
		}
		log.Warn("second signal: aborting now", "signal", sig.String())
		s.Abort(&SignalError{Signal: sig})
		if exit != nil {
			exit(ExitCode(sig))
		}
		return
	}
}

func (w *watcher) stop() {
	w.once.Do(func() {
		if w.notify != nil {
			signal.Stop(w.notify)
		}
		close(w.quit)
	})
	<-w.done
}

// Signal returns the first signal received, or nil (also for a Shutdown not made by
// Watch).
func (s *Shutdown) Signal() os.Signal {
	first, _ := s.signals()
	return first
}

// SecondSignal returns the second signal received, or nil.
func (s *Shutdown) SecondSignal() os.Signal {
	_, second := s.signals()
	return second
}

func (s *Shutdown) signals() (first, second os.Signal) {
	if s.watch == nil {
		return nil, nil
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return s.watch.first, s.watch.second
}
