package stdmetrics

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgervault/ledgervault/internal/buildinfo"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == BuildInfoName {
			m := mf.GetMetric()[0]
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			i := buildinfo.Get()
			if m.GetGauge().GetValue() != 1 || labels["version"] != i.Version || labels["commit"] != i.Commit ||
				labels["goversion"] != i.GoVersion || labels["build_date"] != i.Date {
				t.Fatalf("build_info %v = %v, want %+v", labels, m.GetGauge().GetValue(), i)
			}
		}
	}
	for _, want := range []string{BuildInfoName, "go_goroutines", "process_start_time_seconds"} {
		// The process collector reads /proc: Linux only.
		if !names[want] && (runtime.GOOS == "linux" || !strings.HasPrefix(want, "process_")) {
			t.Errorf("no %s", want)
		}
	}
	// Registering twice in one registry is refused, not a panic.
	if err := Register(reg); err == nil {
		t.Fatal("second Register accepted")
	}
}
