package operatorux_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/progress/progresstest"
	"github.com/ledgervault/ledgervault/internal/testchain"
)

// checkLogLinesAlone fails when a log line shares its screen line with a bar, or a
// bar drawn over it erased it.
func checkLogLinesAlone(t *testing.T, raw string, screen []string) {
	t.Helper()
	shown := 0
	for _, l := range screen {
		if i := strings.Index(l, `{"time"`); i > 0 {
			t.Fatalf("a log line was printed onto the bar: %q", l)
		} else if i == 0 {
			shown++
		}
	}
	if written := strings.Count(raw, `{"time"`); shown != written {
		t.Fatalf("%d log lines written, %d left on the screen", written, shown)
	}
}

// finalLine returns the screen line of the bar named desc at 100%.
func finalLine(t *testing.T, screen []string, desc string) string {
	t.Helper()
	for _, l := range screen {
		if strings.HasPrefix(l, desc+"  100% [") {
			return l
		}
	}
	t.Fatalf("no final %q bar at 100%% on the screen:\n%s", desc, strings.Join(screen, "\n"))
	return ""
}

var rateRE = regexp.MustCompile(`  ([0-9.]+) (B|KiB|MiB|GiB)/s`)

// barRate returns the byte rate a bar line shows (false when it shows none).
func barRate(line string) (float64, bool) {
	m := rateRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v * map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]], true
}

// TestBackupProgressBar: a one-off backup's bar ends at its total (every
// transaction of the range), its byte rate is no higher than the summary's
// (bytes over the backup's elapsed time), and the log lines are never printed onto
// it.
func TestBackupProgressBar(t *testing.T) {
	dir := t.TempDir()
	c := testchain.New(t, chainCfg, lastVersion, testchain.Options{ReadTimeout: 30 * time.Second})
	n := strconv.Itoa(lastVersion + 1)
	r := ok(t, dir, "backup", "transaction", "--start-version", "0", "--num-transactions", n, "--max-chunk-size", "16384",
		"--backup-service-address", c.Addr, "--storage", "file://"+filepath.Join(dir, "store"), "--progress", "bar", "--log-format", "json")
	screen := progresstest.Screen(r.Stderr)
	t.Logf("screen:\n%s", strings.Join(screen, "\n"))
	checkLogLinesAlone(t, r.Stderr, screen)
	line := finalLine(t, screen, "transactions")
	if !strings.Contains(line, n+"/"+n+" items") || strings.Contains(line, "ETA") {
		t.Fatalf("final bar %q: want %s/%s items and no ETA", line, n, n)
	}
	var done struct {
		Msg      string `json:"msg"`
		RawBytes int64  `json:"raw_bytes"`
		Elapsed  string `json:"elapsed"`
	}
	for _, l := range screen {
		var rec = done
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "backup completed" {
			done = rec
		}
	}
	el, err := time.ParseDuration(done.Elapsed)
	if err != nil || done.RawBytes == 0 {
		t.Fatalf("no \"backup completed\" line with raw_bytes and elapsed: %+v %v", done, err)
	}
	if rate, shown := barRate(line); shown && rate > 1.5*float64(done.RawBytes)/el.Seconds() {
		t.Fatalf("the bar claims %.0f B/s, the backup wrote %d bytes in %v", rate, done.RawBytes, el)
	}
}

// TestRestoreProgressBar: every phase of a restore leaves its bar's final line at
// 100% on the screen (none vanishes before the end) and no log line lands on a bar.
func TestRestoreProgressBar(t *testing.T) {
	w := newWorld(t)
	r := ok(t, w.dir, "restore", "--db", filepath.Join(w.dir, "db"), "--target-version", "latest", "--storage", w.url,
		"--trust-waypoint", w.waypoint, "--progress", "bar", "--log-format", "json")
	screen := progresstest.Screen(r.Stderr)
	t.Logf("screen:\n%s", strings.Join(screen, "\n"))
	checkLogLinesAlone(t, r.Stderr, screen)
	sizes := regexp.MustCompile(`  ([0-9.]+ [KMG]?i?B) / ([0-9.]+ [KMG]?i?B)  `)
	for _, phase := range []string{"epoch history", "state snapshot", "transactions"} {
		line := finalLine(t, screen, phase)
		if strings.Contains(line, "ETA") {
			t.Fatalf("final bar %q shows an ETA", line)
		}
		// The bar ends at its total, not above or below it.
		if m := sizes.FindStringSubmatch(line); m == nil || m[1] != m[2] {
			t.Fatalf("final bar %q: want done equal to the total", line)
		}
	}
}

// TestVerifyProgressBar: verify's bars, like restore's, end at their totals and stay,
// and no log line lands on them.
func TestVerifyProgressBar(t *testing.T) {
	w := newWorld(t)
	r := ok(t, w.dir, "verify", "--storage", w.url, "--trust-waypoint", w.waypoint, "--progress", "bar", "--log-format", "json")
	screen := progresstest.Screen(r.Stderr)
	t.Logf("screen:\n%s", strings.Join(screen, "\n"))
	checkLogLinesAlone(t, r.Stderr, screen)
	bars := 0
	sizes := regexp.MustCompile(`  ([0-9.]+ [KMG]?i?B) / ([0-9.]+ [KMG]?i?B)  `)
	for _, l := range screen {
		if m := sizes.FindStringSubmatch(l); m != nil {
			bars++
			if m[1] != m[2] || !strings.Contains(l, "100% [") {
				t.Fatalf("final bar %q: want done equal to the total", l)
			}
		}
	}
	if bars == 0 {
		t.Fatal("no bar on the screen")
	}
}
