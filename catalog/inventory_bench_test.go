package catalog_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/catalog"
)

// BenchmarkPlan plans a restore over 10,000 overlapping transaction backups and 100
// snapshots.
func BenchmarkPlan(b *testing.B) {
	var es []catalog.Entry
	for i := range uint64(10_000) {
		es = append(es, txnE(i*1000, i*1000+1499))
	}
	for i := range uint64(100) {
		es = append(es, snapE(i*100_000+7))
		es = append(es, epochE(i*10, i*10+9))
	}
	inv := catalog.New(es)
	b.ResetTimer()
	for b.Loop() {
		p, err := inv.Plan(9_999_000)
		if err != nil || p.Snapshot == nil {
			b.Fatal(err)
		}
	}
}
