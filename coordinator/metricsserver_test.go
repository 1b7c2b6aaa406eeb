package coordinator

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestServeMetrics(t *testing.T) {
	m := NewMetrics()
	s, err := ServeMetrics("127.0.0.1:0", m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no heartbeat yet") {
		t.Fatalf("/healthz before a heartbeat: %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{"ledgervault_coordinator_heartbeat", "ledgervault_build_info{", "go_goroutines ", "process_start_time_seconds "} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s: %d %q", want, code, body)
		}
	}
	// The address is taken while it serves.
	if _, err := ServeMetrics(s.Addr(), m, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a second server on the same address")
	}
	s.Close()
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("still listening after Close")
	}
}
