// Package localapi serves the router's local endpoints (127.0.0.1 by default): /healthz for
// liveness as seen by the network, /readyz for readiness to host traffic, /metrics for Prometheus.
package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where the endpoints listen unless configured; loopback only, since nothing on a
// customer router may accept connections from the network.
const DefaultAddr = "127.0.0.1:9262"

// Status is what the endpoints report on.
type Status interface {
	// Connected reports whether the control channel is up.
	Connected() bool
	// Ready returns nil when the router can host traffic, else why not.
	Ready() error
}

// Handler returns the endpoints' handler.
func Handler(st Status, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if st.Connected() {
			fmt.Fprintln(w, "ok: control channel up")
			return
		}
		http.Error(w, "control channel down", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := st.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}

// Server runs the endpoints on Addr until its context ends.
type Server struct {
	Addr     string
	Status   Status
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// Run listens and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("local endpoints: %w (choose another address with --local-addr)", err)
	}
	srv := &http.Server{Handler: Handler(s.Status, s.Gatherer), ReadHeaderTimeout: 5 * time.Second}
	s.Logger.Info("local endpoints listening", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
