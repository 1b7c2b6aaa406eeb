package aptos

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEpochChain measures, in one run over the 210 real endings of aptos-libra7,
// decoding alone (strict BCS decode and waypoint hash of every ending: the baseline) and
// the full verification (decode, chain checks, 209 BLS aggregate signatures in
// parallel on all cores). It reports endings/s and signatures/s and the process's peak
// RSS.
//
//	go test -run XXX -bench EpochChain -benchtime 5x ./aptos/
func BenchmarkEpochChain(b *testing.B) {
	endings := loadCorpusEndings(b)
	trusted := genesisWaypoint(b)
	b.Run("decode", func(b *testing.B) {
		cpu0 := cpuTime()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			for _, e := range endings {
				li, err := DecodeLedgerInfoWithSignatures(e.record)
				if err != nil {
					b.Fatal(err)
				}
				_ = DiemDomain.Waypoint(&li.LedgerInfo)
			}
		}
		b.ReportMetric(float64(b.N*len(endings))/time.Since(start).Seconds(), "endings/s")
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N*len(endings)), "cpu-us/ending")
	})
	b.Run("verify", func(b *testing.B) {
		var sigs int
		cpu0 := cpuTime()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			_, st, err := VerifyEpochChain(context.Background(), trusted, corpusSource(b, endings), ChainOptions{})
			if err != nil {
				b.Fatal(err)
			}
			sigs += st.Signatures
		}
		el := time.Since(start).Seconds()
		b.ReportMetric(float64(b.N*len(endings))/el, "endings/s")
		b.ReportMetric(float64(sigs)/el, "signatures/s")
		// CPU time per signature does not depend on how busy the machine is.
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(sigs), "cpu-ms/signature")
	})
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.Logf("peak RSS %.1f MiB", float64(ru.Maxrss)/1024)
	}
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
