package compact

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// TestPartsWithinLimits checks that a union larger than one metadata file allows is
// split into files that each decode within the limits, and that no line is lost.
func TestPartsWithinLimits(t *testing.T) {
	all := lineSet{}
	n := native.MaxMetadataLines + 1234
	for i := 0; i < n; i++ {
		all[native.Metadata{Format: native.FormatVersion, Type: native.TypeTransaction,
			FirstVersion: uint64(i), LastVersion: uint64(i),
			Manifest: storage.FileHandle(fmt.Sprintf("t-%d/manifest.json", i))}] = struct{}{}
	}
	parts, err := encodeParts(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	seen := lineSet{}
	total := 0
	for i, p := range parts {
		ms, err := native.DecodeMetadataFile(fmt.Sprintf("part %d", i), p.data)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != p.lines || bytes.Count(p.data, []byte("\n")) != p.lines {
			t.Fatalf("part %d: %d lines decoded, %d counted", i, len(ms), p.lines)
		}
		seen.add(ms)
		total += len(ms)
	}
	if total != n || len(seen) != n || !seen.covers(keys(all)) {
		t.Fatalf("%d lines written, %d distinct, want %d", total, len(seen), n)
	}
}

func keys(s lineSet) []native.Metadata {
	var out []native.Metadata
	for m := range s {
		out = append(out, m)
	}
	return out
}
