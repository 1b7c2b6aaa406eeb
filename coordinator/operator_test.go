package coordinator

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDashboardUsesExportedMetrics checks that every metric the Grafana dashboard
// queries is one the coordinator exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("../docs/grafana/ledgervault.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	m := NewMetrics()
	m.duration.WithLabelValues(KindStateSnapshot).Observe(1)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	used := regexp.MustCompile(`ledgervault_coordinator_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) < 10 {
		t.Fatalf("dashboard uses only %d metric references", len(used))
	}
	for _, name := range used {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !exported[base] {
			t.Errorf("dashboard queries %s, not exported", name)
		}
	}
}

// TestDeployGracePeriods checks that the systemd unit and the Kubernetes manifest give
// the coordinator more time to stop than its --shutdown-grace.
func TestDeployGracePeriods(t *testing.T) {
	grace := func(text string) time.Duration {
		m := regexp.MustCompile(`--shutdown-grace[ =](\d+s)`).FindStringSubmatch(text)
		if m == nil {
			t.Fatal("no --shutdown-grace")
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	unit, err := os.ReadFile("../deploy/systemd/ledgervault-backup.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)s$`).FindSubmatch(unit)
	if m == nil || !strings.Contains(string(unit), "KillMode=control-group") {
		t.Fatal("unit lacks TimeoutStopSec or KillMode=control-group")
	}
	stop, _ := strconv.Atoi(string(m[1]))
	if g := grace(string(unit)); time.Duration(stop)*time.Second < g+10*time.Second {
		t.Fatalf("TimeoutStopSec %ds not above --shutdown-grace %s plus a margin", stop, g)
	}
	k8s, err := os.ReadFile("../deploy/kubernetes/coordinator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m = regexp.MustCompile(`terminationGracePeriodSeconds: (\d+)`).FindSubmatch(k8s)
	if m == nil {
		t.Fatal("manifest lacks terminationGracePeriodSeconds")
	}
	tg, _ := strconv.Atoi(string(m[1]))
	if g := grace(string(k8s)); time.Duration(tg)*time.Second < g+10*time.Second {
		t.Fatalf("terminationGracePeriodSeconds %d not above --shutdown-grace %s plus a margin", tg, g)
	}
}
