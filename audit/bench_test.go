package audit_test

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/storage"
)

// benchAudit audits aptos-libra7 b.N times and reports files/s and MB/s (bytes as
// the store returned them: stored through file://, decompressed through the
// adapter; the metadata files are counted in files/s, not in MB/s).
func benchAudit(b *testing.B, open func(t testing.TB, root string) storage.Store) {
	root, _, err := corpora.Aptos()
	if err != nil {
		b.Fatal(err)
	}
	st := open(b, root)
	var files, bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := audit.BackupCLI(context.Background(), st, audit.Options{})
		if err != nil {
			b.Fatal(err)
		}
		files += int64(rep.Files + rep.MetadataFiles)
		bytes += rep.Bytes
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(files)/s, "files/s")
	b.ReportMetric(float64(bytes)/s/1e6, "MB/s")
}

func BenchmarkAuditAptosFile(b *testing.B)    { benchAudit(b, openLocal) }
func BenchmarkAuditAptosAdapter(b *testing.B) { benchAudit(b, openAptosAdapter) }
