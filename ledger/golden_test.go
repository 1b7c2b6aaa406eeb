package ledger

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden.json")

// TestGoldenEncodings pins the canonical encodings and hashes: backups persist them, so
// any change is a format change and must be deliberate (go test -run Golden -update).
func TestGoldenEncodings(t *testing.T) {
	c := newTestChain(t, 2)
	tw := sampleTxn(t, 42)
	got := map[string]string{}
	add := func(name string, v any, h Hash) {
		got[name] = hex.EncodeToString(mustEncode(t, v))
		got[name+".hash"] = h.String()
	}
	add("TransactionWithOutput", &tw, tw.Info.Hash())
	add("Transaction", &tw.Transaction, tw.Transaction.Hash())
	add("WriteSet", tw.WriteSet, tw.WriteSet.Hash())
	add("Event", &tw.Events[0], tw.Events[0].Hash())
	add("TransactionInfo", &tw.Info, tw.Info.Hash())
	add("ValidatorSet", c.sets[1], c.sets[1].Hash())
	add("LedgerInfo", &c.endings[2].LedgerInfo, c.endings[2].LedgerInfo.Hash())
	add("LedgerInfoWithSignatures", &c.endings[2], c.endings[2].LedgerInfo.Hash())
	got["EventRoot.none"] = EventRoot(nil).String()
	got["EventRoot.two"] = EventRoot(tw.Events).String()
	got["Waypoint"] = NewWaypoint(&c.endings[0].LedgerInfo).String()

	path := filepath.Join("testdata", "golden.json")
	if *updateGolden {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Errorf("golden file has %d entries, computed %d", len(want), len(got))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s changed:\n got  %s\n want %s", k, got[k], w)
		}
	}
}
