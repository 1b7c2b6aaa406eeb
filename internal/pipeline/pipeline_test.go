package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter tracks how many work calls run at once and how many results sit finished
// but not yet consumed.
type counter struct {
	mu                    sync.Mutex
	running, maxRunning   int
	finished, maxFinished int
	active                atomic.Int64
}

func (c *counter) start() {
	c.mu.Lock()
	c.running++
	c.maxRunning = max(c.maxRunning, c.running)
	c.mu.Unlock()
}

func (c *counter) finish() {
	c.mu.Lock()
	c.running--
	c.finished++
	c.maxFinished = max(c.maxFinished, c.finished)
	c.mu.Unlock()
}

func (c *counter) consumed() {
	c.mu.Lock()
	c.finished--
	c.mu.Unlock()
}

func sliceSource(n int) Source[int] {
	i := 0
	return func(ctx context.Context) (int, bool, error) {
		if i >= n {
			return 0, false, nil
		}
		i++
		return i - 1, true, nil
	}
}

func TestOrderedKeepsOrderAndBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 60).Draw(t, "n")
		workers := rapid.IntRange(1, 6).Draw(t, "workers")
		buffered := rapid.IntRange(0, 4).Draw(t, "buffered")
		delays := rapid.SliceOfN(rapid.IntRange(0, 300), n, n).Draw(t, "delays")
		sinkDelay := rapid.IntRange(0, 200).Draw(t, "sinkDelay")
		var c counter
		var got []int
		err := Ordered(context.Background(), Options{Workers: workers, Buffered: buffered}, sliceSource(n),
			func(ctx context.Context, i int) (int, error) {
				c.start()
				c.active.Add(1)
				defer c.active.Add(-1)
				time.Sleep(time.Duration(delays[i]) * time.Microsecond)
				c.finish()
				return i * 10, nil
			},
			func(ctx context.Context, v int) error {
				c.consumed()
				got = append(got, v)
				time.Sleep(time.Duration(sinkDelay) * time.Microsecond)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("got %d results, want %d", len(got), n)
		}
		for i, v := range got {
			if v != i*10 {
				t.Fatalf("result %d = %d, want %d (out of order)", i, v, i*10)
			}
		}
		if c.maxRunning > workers {
			t.Fatalf("%d work calls ran at once, limit %d", c.maxRunning, workers)
		}
		// A finished result waits either in its worker's slot or in the buffer.
		if c.maxFinished > workers+buffered {
			t.Fatalf("%d finished results held, limit %d", c.maxFinished, workers+buffered)
		}
		if a := c.active.Load(); a != 0 {
			t.Fatalf("%d work calls still active after return", a)
		}
	})
}

func TestOrderedFirstErrorCancelsAndWaits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 50).Draw(t, "n")
		failAt := rapid.IntRange(0, n-1).Draw(t, "failAt")
		workers := rapid.IntRange(1, 6).Draw(t, "workers")
		boom := fmt.Errorf("item %d failed", failAt)
		var active atomic.Int64
		var consumed []int
		err := Ordered(context.Background(), Options{Workers: workers, Buffered: 2}, sliceSource(n),
			func(ctx context.Context, i int) (int, error) {
				active.Add(1)
				defer active.Add(-1)
				if i == failAt {
					return 0, boom
				}
				// Items other than the failing one block until cancelled, unless they come
				// before it (those must finish so order can be kept).
				if i > failAt {
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return i, nil
			},
			func(ctx context.Context, v int) error {
				consumed = append(consumed, v)
				return nil
			})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
		if a := active.Load(); a != 0 {
			t.Fatalf("%d workers still running after return", a)
		}
		for i, v := range consumed {
			if v != i || v >= failAt {
				t.Fatalf("consumed %v: only items before %d may be consumed, in order", consumed, failAt)
			}
		}
	})
}

func TestOrderedPanicBecomesError(t *testing.T) {
	for _, stage := range []string{"source", "worker", "sink"} {
		t.Run(stage, func(t *testing.T) {
			src := sliceSource(20)
			if stage == "source" {
				inner := src
				src = func(ctx context.Context) (int, bool, error) {
					v, ok, err := inner(ctx)
					if v == 5 {
						panic("source boom")
					}
					return v, ok, err
				}
			}
			err := Ordered(context.Background(), Options{Workers: 3, Buffered: 1}, src,
				func(ctx context.Context, i int) (int, error) {
					if stage == "worker" && i == 7 {
						panic("worker boom")
					}
					return i, nil
				},
				func(ctx context.Context, v int) error {
					if stage == "sink" && v == 3 {
						panic("sink boom")
					}
					return nil
				})
			if !errors.Is(err, ErrPanic) {
				t.Fatalf("err = %v, want ErrPanic", err)
			}
		})
	}
}

func TestOrderedSourceAndSinkErrors(t *testing.T) {
	srcErr := errors.New("source failed")
	i := 0
	err := Ordered(context.Background(), Options{Workers: 2}, func(ctx context.Context) (int, bool, error) {
		i++
		if i == 4 {
			return 0, false, srcErr
		}
		return i, true, nil
	}, func(ctx context.Context, v int) (int, error) { return v, nil },
		func(ctx context.Context, v int) error { return nil })
	if !errors.Is(err, srcErr) {
		t.Fatalf("err = %v, want %v", err, srcErr)
	}

	sinkErr := errors.New("sink failed")
	var started atomic.Int64
	err = Ordered(context.Background(), Options{Workers: 4, Buffered: 4}, sliceSource(1000),
		func(ctx context.Context, v int) (int, error) { started.Add(1); return v, nil },
		func(ctx context.Context, v int) error {
			if v == 2 {
				return sinkErr
			}
			return nil
		})
	if !errors.Is(err, sinkErr) {
		t.Fatalf("err = %v, want %v", err, sinkErr)
	}
	if s := started.Load(); s > 3+8 {
		t.Fatalf("%d items started after the sink failed at item 2; the window is 8", s)
	}
}

func TestOrderedParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var active atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- Ordered(ctx, Options{Workers: 3, Buffered: 3}, func(ctx context.Context) (int, bool, error) {
			return 1, true, nil // endless
		}, func(ctx context.Context, v int) (int, error) {
			active.Add(1)
			defer active.Add(-1)
			<-ctx.Done()
			return 0, ctx.Err()
		}, func(ctx context.Context, v int) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ordered did not return after cancel")
	}
	if a := active.Load(); a != 0 {
		t.Fatalf("%d workers still running", a)
	}
}

func TestMap(t *testing.T) {
	out, err := Map(context.Background(), Options{Workers: 4, Buffered: 2}, []string{"a", "b", "c"},
		func(ctx context.Context, s string) (string, error) { return s + s, nil })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out) != "[aa bb cc]" {
		t.Fatalf("Map = %v", out)
	}
}

// BenchmarkOrdered measures the per-item overhead of the pipeline against a plain loop
// doing the same work (the baseline, measured in the same run).
func BenchmarkOrdered(b *testing.B) {
	work := func(ctx context.Context, v int) (int, error) {
		x := v
		for i := 0; i < 2000; i++ {
			x = x*31 + i
		}
		return x, nil
	}
	b.Run("baseline-loop", func(b *testing.B) {
		s := 0
		for i := 0; i < b.N; i++ {
			v, _ := work(context.Background(), i)
			s += v
		}
		_ = s
	})
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			s := 0
			err := Ordered(context.Background(), Options{Workers: w, Buffered: 2 * w}, sliceSource(b.N), work,
				func(ctx context.Context, v int) error { s += v; return nil })
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
