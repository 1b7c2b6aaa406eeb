// Package progress measures and shows the progress of a long operation (a backup,
// a restore phase) truthfully: rates come from the real elapsed time, an ETA is
// shown only when it can be known (a total, and a rate measured over some time),
// a terminal bar is drawn with its final values (and the whole run's rate) when it
// finishes and stays on the screen, and log lines written through the Display never land on the bar: it is
// cleared first and redrawn below them.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/internal/bytesize"
)

// MinRateElapsed is the shortest elapsed time over which a rate (and so an ETA) is
// computed; before it, a rate of a first burst (a buffer filled in microseconds)
// would claim gigabytes per second.
const MinRateElapsed = 500 * time.Millisecond

// Snapshot is the state of an operation at one moment.
type Snapshot struct {
	// Done is the work done, Total the work there is (0 or less: unknown).
	Done, Total int64
	// Elapsed is the real time since the operation started.
	Elapsed time.Duration
}

// Rate returns the work done per second over the elapsed time, and false while it
// is not known: nothing done yet, or less than MinRateElapsed elapsed.
func (s Snapshot) Rate() (float64, bool) {
	if s.Done <= 0 || s.Elapsed < MinRateElapsed {
		return 0, false
	}
	return float64(s.Done) / s.Elapsed.Seconds(), true
}

// ETA returns the time the remaining work takes at the rate so far, and false when
// it is not known: no total, no rate yet, or more done than the total said.
func (s Snapshot) ETA() (time.Duration, bool) {
	rate, ok := s.Rate()
	if !ok || s.Total <= 0 || s.Done > s.Total {
		return 0, false
	}
	secs := float64(s.Total-s.Done) / rate
	return time.Duration(secs * float64(time.Second)).Round(time.Second), true
}

// Unit says how a bar's counts read.
type Unit int

// The units of a bar: bytes (sizes, and a byte rate) or items.
const (
	Bytes Unit = iota
	Items
)

// Options configure a Display.
type Options struct {
	// Now is the clock (default time.Now); tests pass their own.
	Now func() time.Time
	// Throttle is the shortest time between two redraws while work is added
	// (default 200ms); Finish, Start and log lines always redraw.
	Throttle time.Duration
	// Width is the width of the bar itself in characters (default 24).
	Width int
}

// bar is the state of the bar on screen.
type bar struct {
	desc  string
	unit  Unit
	total int64 // the primary count's total; 0 or less: unknown
	done  int64 // the primary count
	// bytes is a secondary byte count of an Items bar (what a backup wrote), shown
	// and used for the rate beside the items.
	bytes int64
	start time.Time
	// final is set for the last draw: the rate is then the whole run's, however
	// short it was.
	final bool
}

// Display draws one progress bar at a time on a terminal (or any writer) and is the
// writer for log lines while it does. It is safe for concurrent use.
type Display struct {
	mu       sync.Mutex
	w        io.Writer
	o        Options
	cur      *bar // nil: no bar
	drawn    bool // the current bar's line is on the screen
	lastDraw time.Time
}

// New returns a display writing to w (the terminal's stderr).
func New(w io.Writer, o Options) *Display {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Throttle <= 0 {
		o.Throttle = 200 * time.Millisecond
	}
	if o.Width <= 0 {
		o.Width = 24
	}
	return &Display{w: w, o: o}
}

// Start finishes the current bar (its final line stays) and starts a new one
// named desc, counting in unit towards total (0 or less: unknown).
func (d *Display) Start(desc string, unit Unit, total int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finishLocked()
	d.cur = &bar{desc: desc, unit: unit, total: total, start: d.o.Now()}
	d.drawLocked()
}

// SetTotal sets the current bar's total (0 or less: unknown).
func (d *Display) SetTotal(total int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != nil {
		d.cur.total = total
		d.drawLocked()
	}
}

// Add adds n to the current bar's count, and bytes to an Items bar's byte count,
// and redraws at most every Throttle.
func (d *Display) Add(n, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return
	}
	d.cur.done += n
	d.cur.bytes += bytes
	if d.o.Now().Sub(d.lastDraw) >= d.o.Throttle {
		d.drawLocked()
	}
}

// Finish draws the current bar with its final values, ends its line, and removes
// it; it is idempotent.
func (d *Display) Finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finishLocked()
}

func (d *Display) finishLocked() {
	if d.cur == nil {
		return
	}
	d.cur.final = true
	d.drawLocked()
	io.WriteString(d.w, "\n")
	d.cur, d.drawn = nil, false
}

// Write writes p (log lines) above the bar: the bar's line is cleared first and the
// bar redrawn after p when p ends a line.
func (d *Display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drawn {
		io.WriteString(d.w, "\r\x1b[K")
		d.drawn = false
	}
	n, err := d.w.Write(p)
	if d.cur != nil && len(p) > 0 && p[len(p)-1] == '\n' {
		d.drawLocked()
	}
	return n, err
}

// Snapshot returns the current bar's state (the zero Snapshot when there is none).
func (d *Display) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return Snapshot{}
	}
	return Snapshot{Done: d.cur.done, Total: d.cur.total, Elapsed: d.o.Now().Sub(d.cur.start)}
}

func (d *Display) drawLocked() {
	now := d.o.Now()
	io.WriteString(d.w, "\r"+d.cur.line(now, d.o.Width)+"\x1b[K")
	d.drawn, d.lastDraw = true, now
}

// line renders the bar at now: description, percentage and bar when the total is
// known, counts, rate and ETA when they are known.
func (b *bar) line(now time.Time, width int) string {
	s := Snapshot{Done: b.done, Total: b.total, Elapsed: now.Sub(b.start)}
	var parts []string
	parts = append(parts, b.desc)
	if b.total > 0 {
		frac := min(float64(b.done)/float64(b.total), 1)
		fill := int(frac * float64(width))
		parts = append(parts, fmt.Sprintf("%3d%% [%s%s]", int(frac*100), strings.Repeat("=", fill), strings.Repeat(" ", width-fill)))
	}
	parts = append(parts, b.counts())
	rate := s
	if b.unit == Items && b.bytes > 0 {
		rate.Done = b.bytes // the byte rate is the one people compare
	}
	r, ok := rate.Rate()
	if b.final && rate.Done > 0 && rate.Elapsed > 0 {
		r, ok = float64(rate.Done)/rate.Elapsed.Seconds(), true
	}
	if ok {
		if b.unit == Bytes || b.bytes > 0 {
			parts = append(parts, bytesize.Format(int64(r))+"/s")
		} else {
			parts = append(parts, fmt.Sprintf("%.0f items/s", r))
		}
	}
	if eta, ok := s.ETA(); ok && b.done < b.total {
		parts = append(parts, "ETA "+eta.String())
	}
	parts = append(parts, s.Elapsed.Round(100*time.Millisecond).String())
	return strings.Join(parts, "  ")
}

// counts renders done (of total) in the bar's unit.
func (b *bar) counts() string {
	if b.unit == Bytes {
		if b.total > 0 {
			return bytesize.Format(b.done) + " / " + bytesize.Format(b.total)
		}
		return bytesize.Format(b.done)
	}
	c := fmt.Sprintf("%d items", b.done)
	if b.total > 0 {
		c = fmt.Sprintf("%d/%d items", b.done, b.total)
	}
	if b.bytes > 0 {
		c += ", " + bytesize.Format(b.bytes)
	}
	return c
}
