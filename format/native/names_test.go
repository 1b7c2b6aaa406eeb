package native

import (
	"testing"
	"time"
)

func TestLeaseNames(t *testing.T) {
	if n, ok := ParseLeaseName("metadata/" + LeaseName(42)); !ok || n != 42 {
		t.Fatalf("%d %v", n, ok)
	}
	for _, bad := range []string{"lease_1.lease", "lease_0000000000000000000x.lease", "x.meta", "lease_00000000000000000001.meta"} {
		if _, ok := ParseLeaseName(bad); ok {
			t.Fatalf("%s parsed", bad)
		}
	}
}

func TestCompactedNameRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	n := CompactedName{Created: now, Run: "0123456789abcdef", Part: 7}
	back, ok := ParseCompactedName(n.String())
	if !ok || back != n || n.String() != "compacted_20261126T010203Z-0123456789abcdef-7.meta" {
		t.Fatalf("%s -> %+v %v", n, back, ok)
	}
	for _, bad := range []string{"compacted_x.meta", "backup_1.meta", "compacted_20261126T010203Z-0123456789abcdef-07.meta",
		"compacted_20261126T010203Z-0123456789ABCDEF-0.meta", "compacted_20261126T010203Z-0123456789abcdef--1.meta",
		"compacted_20261326T010203Z-0123456789abcdef-0.meta", "compacted_20261126T010203Z-0123456789abcdef-0.lease"} {
		if _, ok := ParseCompactedName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseCompactedName checks that a compacted file name read back from storage parses only
// when it is exactly what String writes.
func FuzzParseCompactedName(f *testing.F) {
	f.Add("compacted_20261126T010203Z-0123456789abcdef-7.meta")
	f.Add("compacted_20261126T010203Z-0123456789abcdef-1048576.meta")
	f.Add("compacted_-.meta")
	f.Add("transaction_0-99.meta")
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseCompactedName(s)
		if ok && n.String() != s {
			t.Fatalf("%q parsed to %+v which prints %q", s, n, n.String())
		}
	})
}
