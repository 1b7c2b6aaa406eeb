package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAutoIsJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatAuto, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello", "n", 3)
	l.Debug("hidden")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if m["msg"] != "hello" || m["n"] != float64(3) {
		t.Fatalf("unexpected record %v", m)
	}
}

func TestTextAndLevels(t *testing.T) {
	var buf bytes.Buffer
	lvl, err := ParseLevel("debug")
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(&buf, FormatText, lvl)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("shown")
	if !strings.Contains(buf.String(), "msg=shown") {
		t.Fatalf("text output %q", buf.String())
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("ParseLevel accepted an unknown level")
	}
	if _, err := New(&buf, "xml", lvl); err == nil {
		t.Fatal("New accepted an unknown format")
	}
}

// TestJSONDurationsAreStrings: a duration in a JSON log line reads as "1.5s", not as
// the integer nanoseconds slog's JSON handler writes by default (issue 15 item 10).
func TestJSONDurationsAreStrings(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatJSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("done", "elapsed", 1500*time.Millisecond, slog.Group("phase", "wait", 250*time.Millisecond))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if m["elapsed"] != "1.5s" {
		t.Fatalf("elapsed = %#v, want \"1.5s\" (line %s)", m["elapsed"], buf.String())
	}
	if g, _ := m["phase"].(map[string]any); g == nil || g["wait"] != "250ms" {
		t.Fatalf("phase.wait = %#v, want \"250ms\"", m["phase"])
	}
}
