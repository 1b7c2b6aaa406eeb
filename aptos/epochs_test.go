package aptos

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// corpusSource turns the corpus endings into a SliceSource with manifest waypoints.
func corpusSource(t testing.TB, endings []corpusEnding) *SliceSource {
	t.Helper()
	s := make(SliceSource, len(endings))
	for i, e := range endings {
		w, err := ParseWaypoint(e.waypoint)
		if err != nil {
			t.Fatal(err)
		}
		s[i] = Ending{Source: e.source, Record: e.record, ManifestWaypoint: &w}
	}
	return &s
}

func TestVerifyEpochChainCorpus(t *testing.T) {
	h := verifiedHistory(t)
	stats := historyStats
	if h.FirstEpoch() != 0 || h.LastEpoch() != 209 || stats.Endings != 210 {
		t.Fatalf("history %d..%d, %d endings", h.FirstEpoch(), h.LastEpoch(), stats.Endings)
	}
	if stats.Signatures != 209 {
		t.Fatalf("%d aggregate signatures verified, want 209 (every ending after genesis)", stats.Signatures)
	}
	t.Logf("%+v", stats)
}
