package progress_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/progress"
	"github.com/ledgervault/ledgervault/internal/progress/progresstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDisplay() (*progress.Display, *bytes.Buffer, *clock) {
	var out bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return progress.New(&out, progress.Options{Now: c.now, Throttle: 200 * time.Millisecond}), &out, c
}

// TestRate: the rate is the work over the real elapsed time, unknown before any
// work or while the elapsed time is too short to mean anything (a first buffer
// filled in a millisecond is not "20 GB/s").
func TestRate(t *testing.T) {
	if r, ok := (progress.Snapshot{Done: 3_400_000, Elapsed: time.Second}).Rate(); !ok || r != 3_400_000 {
		t.Fatalf("3.4 MB in 1s: rate %v %v, want 3.4e6", r, ok)
	}
	if r, ok := (progress.Snapshot{Done: 6_800_000, Elapsed: 2 * time.Second}).Rate(); !ok || r != 3_400_000 {
		t.Fatalf("6.8 MB in 2s: rate %v %v, want 3.4e6", r, ok)
	}
	for _, s := range []progress.Snapshot{{Done: 20 << 20, Elapsed: time.Millisecond}, {Done: 0, Elapsed: time.Minute}} {
		if r, ok := s.Rate(); ok {
			t.Fatalf("%+v: rate %v, want unknown", s, r)
		}
	}
}

// TestETA: the time left is the remaining work at the measured rate, and unknown
// without a total, without a rate, or past the total; never a constant 0s.
func TestETA(t *testing.T) {
	if eta, ok := (progress.Snapshot{Done: 2 << 20, Total: 10 << 20, Elapsed: time.Second}).ETA(); !ok || eta != 4*time.Second {
		t.Fatalf("2 of 10 MiB in 1s: ETA %v %v, want 4s", eta, ok)
	}
	if eta, ok := (progress.Snapshot{Done: 9 << 20, Total: 10 << 20, Elapsed: 9 * time.Second}).ETA(); !ok || eta != time.Second {
		t.Fatalf("9 of 10 MiB in 9s: ETA %v %v, want 1s", eta, ok)
	}
	for _, s := range []progress.Snapshot{
		{Done: 2 << 20, Elapsed: time.Second},                       // no total
		{Done: 0, Total: 10 << 20, Elapsed: time.Second},            // no rate
		{Done: 2 << 20, Total: 10 << 20, Elapsed: time.Millisecond}, // too early
		{Done: 11 << 20, Total: 10 << 20, Elapsed: time.Second},     // past the total
	} {
		if eta, ok := s.ETA(); ok {
			t.Fatalf("%+v: ETA %v, want unknown", s, eta)
		}
	}
}

// TestBarShowsRateAndETA: a bar midway shows the rate of the real elapsed time and
// the ETA it implies; before any time passed it shows neither.
func TestBarShowsRateAndETA(t *testing.T) {
	d, out, c := newDisplay()
	d.Start("state snapshot", progress.Bytes, 10<<20)
	d.Add(1<<20, 0) // at once: no rate yet
	if s := progresstest.Screen(out.String()); strings.Contains(s[len(s)-1], "/s") || strings.Contains(s[len(s)-1], "ETA") {
		t.Fatalf("a rate or ETA before any time passed: %q", s[len(s)-1])
	}
	c.advance(time.Second)
	d.Add(1<<20, 0)
	last := progresstest.Screen(out.String())
	line := last[len(last)-1]
	for _, want := range []string{"state snapshot", " 20% [", "2.0 MiB / 10.0 MiB", "2.0 MiB/s", "ETA 4s"} {
		if !strings.Contains(line, want) {
			t.Fatalf("bar %q lacks %q", line, want)
		}
	}
	d.Finish()
}

// TestFinishReachesTotal: updates are throttled, but the bar's last line shows the
// final count (the whole total), the rate over the whole run and no ETA, and it
// stays on the screen.
func TestFinishReachesTotal(t *testing.T) {
	d, out, c := newDisplay()
	d.Start("transactions", progress.Items, 15000)
	for i := 0; i < 15000; i++ {
		c.advance(10 * time.Microsecond) // 150ms in all: mostly throttled
		d.Add(1, 100)
	}
	c.advance(850 * time.Millisecond)
	d.Finish()
	screen := progresstest.Screen(out.String())
	if len(screen) != 1 {
		t.Fatalf("screen %q: want the bar's final line", screen)
	}
	for _, want := range []string{"transactions", "100% [", "15000/15000 items, 1.4 MiB", "1.4 MiB/s", "1s"} {
		if !strings.Contains(screen[0], want) {
			t.Fatalf("final line %q lacks %q", screen[0], want)
		}
	}
	if strings.Contains(screen[0], "ETA") {
		t.Fatalf("final line %q shows an ETA", screen[0])
	}
	d.Finish() // idempotent
	if got := progresstest.Screen(out.String()); len(got) != 1 {
		t.Fatalf("a second Finish changed the screen: %q", got)
	}
}

// TestPhasesStay: starting the next phase leaves the previous bar's final line on
// the screen (a restore's bar does not vanish before the end).
func TestPhasesStay(t *testing.T) {
	d, out, c := newDisplay()
	d.Start("epoch history", progress.Bytes, 1000)
	d.Add(1000, 0)
	c.advance(time.Second)
	d.Start("state snapshot", progress.Bytes, 5000)
	c.advance(time.Second)
	d.Add(2500, 0)
	screen := progresstest.Screen(out.String())
	if len(screen) != 2 || !strings.HasPrefix(screen[0], "epoch history  100%") || !strings.HasPrefix(screen[1], "state snapshot   50%") {
		t.Fatalf("screen %q: want the finished phase's line and the running one", screen)
	}
	d.Finish()
	screen = progresstest.Screen(out.String())
	if len(screen) != 2 || !strings.HasPrefix(screen[1], "state snapshot   50%") {
		t.Fatalf("screen after Finish %q", screen)
	}
}

// TestLogLinesAboveBar: a log line written through the display clears the bar
// first, is shown on a line of its own, and the bar is redrawn below it.
func TestLogLinesAboveBar(t *testing.T) {
	d, out, c := newDisplay()
	d.Start("ledger infos", progress.Items, 8)
	d.Add(3, 300)
	c.advance(time.Second)
	if _, err := d.Write([]byte(`{"msg":"backup complete"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	d.Add(5, 500)
	d.Finish()
	screen := progresstest.Screen(out.String())
	if len(screen) != 2 || screen[0] != `{"msg":"backup complete"}` || !strings.HasPrefix(screen[1], "ledger infos  100%") {
		t.Fatalf("screen %q: want the log line alone, then the bar", screen)
	}
	// Without a bar the display is a plain writer.
	out.Reset()
	d.Write([]byte("after\n"))
	if out.String() != "after\n" {
		t.Fatalf("write without a bar: %q", out.String())
	}
}

// TestConcurrentUse: adds, log lines and phase changes from several goroutines
// (run with -race).
func TestConcurrentUse(t *testing.T) {
	d, _, c := newDisplay()
	d.Start("x", progress.Bytes, 4000)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.advance(time.Millisecond)
				d.Add(1, 0)
				if i%100 == 0 {
					d.Write([]byte("log\n"))
				}
			}
		}()
	}
	wg.Wait()
	if s := d.Snapshot(); s.Done != 4000 || s.Total != 4000 {
		t.Fatalf("snapshot %+v", s)
	}
	d.Finish()
}

// TestShortPhaseFinalRate: a phase shorter than MinRateElapsed shows no rate while
// it runs, and its final line shows the rate of the whole phase.
func TestShortPhaseFinalRate(t *testing.T) {
	d, out, c := newDisplay()
	d.Start("epoch history", progress.Bytes, 3000)
	c.advance(250 * time.Millisecond)
	d.Add(3000, 0)
	if s := progresstest.Screen(out.String()); strings.Contains(s[0], "/s") {
		t.Fatalf("a rate after 250ms: %q", s[0])
	}
	c.advance(50 * time.Millisecond)
	d.Finish()
	if s := progresstest.Screen(out.String()); !strings.Contains(s[0], "  9.8 KiB/s  ") {
		t.Fatalf("final line %q: want 3000 B in 300ms = 9.8 KiB/s", s[0])
	}
}
