package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/logging"
	"github.com/ledgervault/ledgervault/internal/progress"
)

// progressMode resolves a --progress value: auto becomes a bar on a terminal and
// log lines otherwise; anything but auto, bar, log or none is an error.
func progressMode(mode string) (string, error) {
	switch mode {
	case "auto":
		if logging.IsTerminal(os.Stderr) {
			return "bar", nil
		}
		return "log", nil
	case "bar", "log", "none":
		return mode, nil
	}
	return "", fmt.Errorf("--progress %q: want auto, bar, log or none", mode)
}

// progressOut is where a command's progress goes: mode bar, log or none, and the
// display of a bar.
type progressOut struct {
	mode string
	disp *progress.Display // nil unless mode is bar
}

// progressLogger resolves --progress and returns the command's logger with it: with
// a bar, log lines go through the display, which clears the bar before each one and
// redraws it below.
func progressLogger(lf *cli.LogFlags, mode string) (*slog.Logger, progressOut, error) {
	mode, err := progressMode(mode)
	if err != nil {
		return nil, progressOut{}, err
	}
	out := progressOut{mode: mode}
	var w io.Writer = os.Stderr
	if mode == "bar" {
		out.disp = progress.New(os.Stderr, progress.Options{})
		w = out.disp
	}
	log, err := lf.LoggerTo(w)
	return log, out, err
}

// ticker calls fn every 5 s until stop is closed; wait returns when it has.
type ticker struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func startTicker(fn func()) *ticker {
	t := &ticker{stop: make(chan struct{})}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tk := time.NewTicker(5 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tk.C:
				fn()
			}
		}
	}()
	return t
}

// close stops the ticker and waits for it; it is idempotent and nil-safe.
func (t *ticker) close() {
	if t == nil {
		return
	}
	t.once.Do(func() { close(t.stop) })
	t.wg.Wait()
}

// etaAttrs are the log attributes of a snapshot's ETA, none when it is unknown.
func etaAttrs(s progress.Snapshot) []any {
	if eta, ok := s.ETA(); ok {
		return []any{"eta", eta}
	}
	return nil
}

// progressReporter shows a backup's progress as a bar (items of the total, bytes,
// byte rate, ETA) or as periodic log lines; it implements backup.Progress and
// backup.ProgressTotal.
type progressReporter struct {
	items, raw, stored, total atomic.Int64
	disp                      *progress.Display
	tick                      *ticker
	start                     time.Time
}

func newProgressReporter(out progressOut, what string, log *slog.Logger) *progressReporter {
	p := &progressReporter{disp: out.disp, start: time.Now()}
	switch out.mode {
	case "bar":
		p.disp.Start(what, progress.Items, 0)
	case "log":
		p.tick = startTicker(func() {
			el := time.Since(p.start)
			items := progress.Snapshot{Done: p.items.Load(), Total: p.total.Load(), Elapsed: el}
			itemRate, _ := items.Rate()
			rawRate, _ := progress.Snapshot{Done: p.raw.Load(), Elapsed: el}.Rate()
			log.Info("progress", append([]any{"what", what, "items", items.Done, "total_items", items.Total, "raw_bytes", p.raw.Load(),
				"stored_bytes", p.stored.Load(), "items_per_s", int64(itemRate), "raw_mb_per_s", rawRate / 1e6}, etaAttrs(items)...)...)
		})
	}
	return p
}

// Total implements backup.ProgressTotal.
func (p *progressReporter) Total(items int64) {
	p.total.Store(items)
	if p.disp != nil {
		p.disp.SetTotal(items)
	}
}

// Add implements backup.Progress.
func (p *progressReporter) Add(items, raw, stored int64) {
	p.items.Add(items)
	p.raw.Add(raw)
	p.stored.Add(stored)
	if p.disp != nil {
		p.disp.Add(items, raw)
	}
}

// finish stops the display, leaving the bar's final line; it is idempotent.
func (p *progressReporter) finish() {
	p.tick.close()
	if p.disp != nil {
		p.disp.Finish()
	}
}

// phaseProgress shows restore or verify progress: a bar per phase (the finished
// phases' lines stay), or periodic log lines; it implements restore.Progress.
type phaseProgress struct {
	disp  *progress.Display
	tick  *ticker
	mu    sync.Mutex
	phase string
	total int64
	start time.Time
	done  atomic.Int64
}

func newPhaseProgress(out progressOut, log *slog.Logger) *phaseProgress {
	p := &phaseProgress{disp: out.disp, start: time.Now()}
	if out.mode == "log" {
		p.tick = startTicker(func() {
			// Phase resets start under mu: read it with the phase it belongs to.
			p.mu.Lock()
			phase, total, start := p.phase, p.total, p.start
			p.mu.Unlock()
			s := progress.Snapshot{Done: p.done.Load(), Total: total, Elapsed: time.Since(start)}
			rate, _ := s.Rate()
			log.Info("progress", append([]any{"phase", phase, "bytes", s.Done, "total_bytes", total, "mb_per_s", rate / 1e6}, etaAttrs(s)...)...)
		})
	}
	return p
}

// Phase implements restore.Progress.
func (p *phaseProgress) Phase(name string, total int64) {
	p.mu.Lock()
	p.phase, p.total, p.start = name, total, time.Now()
	p.done.Store(0)
	p.mu.Unlock()
	if p.disp != nil {
		p.disp.Start(name, progress.Bytes, total)
	}
}

// Add implements restore.Progress.
func (p *phaseProgress) Add(n int64) {
	p.done.Add(n)
	if p.disp != nil {
		p.disp.Add(n, 0)
	}
}

// finish stops the display, leaving the last phase's final line; it is idempotent.
func (p *phaseProgress) finish() {
	p.tick.close()
	if p.disp != nil {
		p.disp.Finish()
	}
}
