package localapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/metrics"
)

type fakeStatus struct {
	connected bool
	ready     error
}

func (f *fakeStatus) Connected() bool { return f.connected }
func (f *fakeStatus) Ready() error    { return f.ready }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	st := &fakeStatus{ready: errors.New("no service assignment yet")}
	srv := httptest.NewServer(Handler(st, reg))
	defer srv.Close()

	tests := []struct {
		name     string
		setup    func()
		path     string
		code     int
		mentions []string
	}{
		{"healthz while down", func() {}, "/healthz", 503, []string{"control channel down"}},
		{"healthz while up", func() { st.connected = true }, "/healthz", 200, []string{"ok"}},
		{"readyz not ready", func() {}, "/readyz", 503, []string{"no service assignment yet"}},
		{"readyz ready", func() { st.ready = nil }, "/readyz", 200, []string{"ready"}},
		{"metrics", func() {
			m.SetConnected(true)
			m.Reconnect()
			m.SetAssigned(1)
			m.SetServiceHealth([]control.ServiceHealth{{ServiceName: "db", Address: "db.test", Port: 5432, Resolvable: true}})
		}, "/metrics", 200, []string{
			"ztna_router_control_connected 1",
			"ztna_router_control_reconnects_total 1",
			"ztna_router_assigned_services 1",
			`ztna_router_service_resolvable{address="db.test",port="5432",service="db"} 1`,
			`ztna_router_service_reachable{address="db.test",port="5432",service="db"} 0`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			code, body := get(t, srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(body, m) {
					t.Errorf("body lacks %q:\n%s", m, body)
				}
			}
		})
	}
}
