// Package stdmetrics holds the Prometheus collectors every ledgervault metrics
// endpoint serves besides its own: the Go runtime (go_*), the process (process_*)
// and ledgervault_build_info.
package stdmetrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ledgervault/ledgervault/internal/buildinfo"
)

// BuildInfoName is the name of the build information gauge.
const BuildInfoName = "ledgervault_build_info"

// BuildInfo returns the gauge ledgervault_build_info, always 1, labelled with the
// version, commit, build date and Go version of the running binary (buildinfo.Get).
func BuildInfo() prometheus.Collector {
	i := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: BuildInfoName,
		Help: "Always 1; the labels say which build of ledgervault is running.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "build_date": i.Date,
			"goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}

// Collectors returns the standard collectors: Go runtime, process and build info.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), BuildInfo()}
}

// Register registers Collectors with reg.
func Register(reg prometheus.Registerer) error {
	for _, c := range Collectors() {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register standard metrics: %w", err)
		}
	}
	return nil
}
