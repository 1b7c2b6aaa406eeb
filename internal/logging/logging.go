// Package logging builds the process logger: human-readable text on a terminal, JSON
// lines otherwise (for log collectors), at a chosen level.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"
)

// Format names an output format.
type Format string

// The supported formats; FormatAuto picks text on a terminal and JSON otherwise.
const (
	FormatAuto Format = "auto"
	FormatText Format = "text"
	FormatJSON Format = "json"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("parse log level %q: %w", s, err)
	}
	return l, nil
}

// New returns a logger writing to w in format f at level. Durations are written as
// Go duration strings ("1.5s", "250ms") in both formats: slog's JSON handler would
// write integer nanoseconds, which no reader takes for a duration.
func New(w io.Writer, f Format, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationString}
	switch f {
	case FormatAuto, "":
		if IsTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case FormatText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case FormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("unknown log format %q (want auto, text or json)", f)
	}
}

// durationString is the handlers' ReplaceAttr: a time.Duration value becomes its
// String form (groups are visited attribute by attribute by slog itself).
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
