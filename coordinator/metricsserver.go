package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsShutdownGrace bounds how long MetricsServer.Close waits for scrapes in flight.
const metricsShutdownGrace = 2 * time.Second

// MetricsServer serves the Handler of a Metrics (/metrics, /healthz) over HTTP.
type MetricsServer struct {
	srv    *http.Server
	addr   string
	served chan struct{}
}

// ServeMetrics listens on addr (e.g. 127.0.0.1:9187; port 0 picks one) and serves
// m.Handler there until Close. Serving errors go to log.
func ServeMetrics(addr string, m *Metrics, log *slog.Logger) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address: %w", err)
	}
	s := &MetricsServer{
		srv:    &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second},
		addr:   ln.Addr().String(),
		served: make(chan struct{}),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != http.ErrServerClosed { // Serve returns it as is after Close
			log.Error("metrics server", "err", err)
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *MetricsServer) Addr() string { return s.addr }

// Close stops the server, letting scrapes in flight finish for up to 2 s, and waits
// for it to end.
func (s *MetricsServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownGrace)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.served
}
