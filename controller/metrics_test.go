package controller

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
)

// readCounter counts the store's reads that a metrics scrape could make.
type readCounter struct {
	store.Store
	reads atomic.Int64
}

func (r *readCounter) ListRouters(ctx context.Context) ([]api.Router, error) {
	r.reads.Add(1)
	return r.Store.ListRouters(ctx)
}
func (r *readCounter) ListServices(ctx context.Context) ([]api.Service, error) {
	r.reads.Add(1)
	return r.Store.ListServices(ctx)
}
func (r *readCounter) ListIdentities(ctx context.Context) ([]api.Identity, error) {
	r.reads.Add(1)
	return r.Store.ListIdentities(ctx)
}
func (r *readCounter) ListServicePolicies(ctx context.Context) ([]api.ServicePolicy, error) {
	r.reads.Add(1)
	return r.Store.ListServicePolicies(ctx)
}
func (r *readCounter) Count(ctx context.Context) (store.Counts, error) {
	r.reads.Add(1)
	return r.Store.Count(ctx)
}

// TestMetricsScrapeReadsNoStore scrapes 50 times and finds that no scrape reads the store,
// while the counts still follow a create within about a second (the change feed triggers a
// count in the background).
func TestMetricsScrapeReadsNoStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	sq, err := sqlite.Open(ctx, filepath.Join(dir, "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &readCounter{Store: sq}
	c, err := New(Config{CADir: dir, Store: st, Token: "0123456789abcdef0123", Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.counts.maxAge = time.Hour // only changes trigger a count here, so none falls between the scrapes
	go c.counts.run(ctx)
	waitMetric := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := testutil.GatherAndCompare(c.Registry, strings.NewReader(want), "ztna_controller_objects")
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	const head = "# HELP ztna_controller_objects Objects per collection.\n# TYPE ztna_controller_objects gauge\n"
	waitMetric(head + `ztna_controller_objects{collection="identities"} 0
ztna_controller_objects{collection="routers"} 0
ztna_controller_objects{collection="service-policies"} 0
ztna_controller_objects{collection="services"} 0
`)
	before := st.reads.Load()
	for range 50 {
		if _, err := c.Registry.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.reads.Load() - before; n != 0 {
		t.Errorf("50 scrapes read the store %d times, want 0", n)
	}
	if err := st.CreateRouter(ctx, &api.Router{Name: "r"}); err != nil {
		t.Fatal(err)
	}
	waitMetric(head + `ztna_controller_objects{collection="identities"} 0
ztna_controller_objects{collection="routers"} 1
ztna_controller_objects{collection="service-policies"} 0
ztna_controller_objects{collection="services"} 0
`)
	if err := testutil.GatherAndCompare(c.Registry, strings.NewReader(`# HELP ztna_controller_routers Routers by status.
# TYPE ztna_controller_routers gauge
ztna_controller_routers{status="offline"} 0
ztna_controller_routers{status="online"} 0
ztna_controller_routers{status="unenrolled"} 1
`), "ztna_controller_routers"); err != nil {
		t.Error(err)
	}
}
