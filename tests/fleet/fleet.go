// Package fleet runs many routers' control channels in one test process: routers created and
// enrolled through a real controller's API (real registration keys, real enrolment), each
// then running the real router/controlclient session against the controller's control
// endpoints. The control-plane benchmark and the replica spreading test use it; what a
// router hosts is not simulated (no fabric links, no services dialled).
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/router/controlclient"
	"github.com/ztna/ztna/router/identity"
	"github.com/ztna/ztna/router/metrics"
	"github.com/ztna/ztna/router/targets"
)

// Router is one enrolled router of the fleet.
type Router struct {
	ID       string
	Identity *identity.Identity
	client   *controlclient.Client
	// Endpoint is the control endpoint of the router's current session ("" while down).
	endpoint atomic.Pointer[string]
}

// Connected reports whether the router's control channel is up.
func (r *Router) Connected() bool { return r.client != nil && r.client.Connected() }

// Endpoint is the control endpoint of the router's current session, "" while down.
func (r *Router) Endpoint() string {
	if p := r.endpoint.Load(); p != nil && r.Connected() {
		return *p
	}
	return ""
}

// Enrol creates n routers named prefix-0.. with role through c, mints each a key and enrols
// it into its own state directory under dir, with parallel enrolments at once.
func Enrol(t testing.TB, c *apiclient.Client, dir, prefix, role string, n, parallel int) []*Router {
	t.Helper()
	out := make([]*Router, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r, err := enrolOne(c, filepath.Join(dir, fmt.Sprint(i)), fmt.Sprintf("%s-%d", prefix, i), role)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				out[i] = r
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

func enrolOne(c *apiclient.Client, dir, name, role string) (*Router, error) {
	ctx := context.Background()
	r, err := c.CreateRouter(ctx, api.RouterCreate{Name: name, Roles: []string{role}})
	if err != nil {
		return nil, fmt.Errorf("create router %s: %w", name, err)
	}
	k, err := c.CreateRegistrationKey(ctx, api.RegistrationKeyCreate{RouterID: r.ID})
	if err != nil {
		return nil, fmt.Errorf("key for %s: %w", name, err)
	}
	if _, err := enroll.Router(ctx, k.Key, dir, false, enroll.Options{}); err != nil {
		return nil, fmt.Errorf("enrol %s: %w", name, err)
	}
	id, err := identity.Load(dir)
	if err != nil {
		return nil, err
	}
	return &Router{ID: r.ID, Identity: id}, nil
}

type noHealth struct{}

func (noHealth) Results() []control.ServiceHealth { return nil }

// Run starts every router's control channel, dialling its enrolled control endpoints (in
// its own order, as a router does), until ctx ends; wait waits for them to stop.
func Run(ctx context.Context, routers []*Router, log *slog.Logger) (wait func()) {
	return RunWith(ctx, routers, log, nil)
}

// RunWith is Run with every heartbeat's time to its ack handed to onAck (concurrently).
func RunWith(ctx context.Context, routers []*Router, log *slog.Logger, onAck func(time.Duration)) (wait func()) {
	var wg sync.WaitGroup
	for _, r := range routers {
		r.client = &controlclient.Client{
			Endpoints:   r.Identity.Config.Control,
			Credentials: r.Identity,
			Hello:       control.Hello{Version: "fleet"},
			Targets:     targets.NewSet(),
			Health:      noHealth{},
			Metrics:     metrics.New(prometheus.NewRegistry()),
			Logger:      log.With("router_id", r.ID),
		}
		r.client.OnSession = func(endpoint string) { r.endpoint.Store(&endpoint) }
		r.client.OnHeartbeatAck = onAck
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client.Run(ctx)
		}()
	}
	return wg.Wait
}

// Count returns how many routers are connected, and how many per control endpoint.
func Count(routers []*Router) (connected int, byEndpoint map[string]int) {
	byEndpoint = map[string]int{}
	for _, r := range routers {
		if e := r.Endpoint(); e != "" {
			connected++
			byEndpoint[e]++
		}
	}
	return connected, byEndpoint
}
