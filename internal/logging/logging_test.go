package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
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
