// Package progresstest reads what a progress display left on a terminal, for
// tests: the screen lines after carriage returns, line feeds and "erase to end of
// line" (ESC [ K) took effect.
package progresstest

import "strings"

// Screen returns the lines a terminal shows after printing out: "\r" moves to the
// line's start (later text overwrites), "\x1b[K" erases from the cursor to the
// end of the line, "\n" starts a new line. Other escape sequences are kept as text.
func Screen(out string) []string {
	var lines []string
	var line []rune
	col := 0
	for i := 0; i < len(out); {
		switch {
		case out[i] == '\n':
			lines = append(lines, string(line))
			line, col = nil, 0
			i++
		case out[i] == '\r':
			col = 0
			i++
		case strings.HasPrefix(out[i:], "\x1b[K"):
			line = line[:col]
			i += 3
		default:
			r := []rune(out[i:])[0]
			if col < len(line) {
				line[col] = r
			} else {
				line = append(line, r)
			}
			col++
			i += len(string(r))
		}
	}
	if len(line) > 0 {
		lines = append(lines, string(line))
	}
	return lines
}
