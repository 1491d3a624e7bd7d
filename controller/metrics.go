package controller

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/api"
)

// newRegistry holds the controller's metrics: runtime, edge API, and the object counts that
// counts keeps in memory. Components attached later register their own collectors.
func newRegistry(counts *objectCounts, extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), counts)
	reg.MustRegister(extra...)
	return reg
}

var (
	routersDesc = prometheus.NewDesc("ztna_controller_routers", "Routers by status.", []string{"status"}, nil)
	objectsDesc = prometheus.NewDesc("ztna_controller_objects", "Objects per collection.", []string{"collection"}, nil)
)

// Count refresh defaults: at most one count a second while changes arrive, and one every
// 10 s without any, since router status reports are written in batches that publish no
// change. A scrape used to list every table (0.5 s at 5,010 routers); now it reads memory,
// and the store answers two aggregate queries at these rates whoever scrapes how often.
const (
	countsMinInterval = time.Second
	countsMaxAge      = 10 * time.Second
)

// objectCounts keeps the collections' sizes and the routers by status in memory for
// /metrics, refreshed from the store (store.Pager.Count) by run, never by a scrape.
type objectCounts struct {
	st                  store.Store
	minInterval, maxAge time.Duration
	log                 *slog.Logger

	mu     sync.Mutex
	counts *store.Counts // nil until the first count
}

func newObjectCounts(st store.Store, log *slog.Logger) *objectCounts {
	return &objectCounts{st: st, minInterval: countsMinInterval, maxAge: countsMaxAge, log: log}
}

// run counts at start, after changes (at most once per minInterval) and every maxAge,
// until ctx ends.
func (o *objectCounts) run(ctx context.Context) {
	changes := o.st.Subscribe(ctx)
	tick := time.NewTicker(o.minInterval)
	defer tick.Stop()
	dirty, last := true, time.Time{}
	for {
		if dirty || time.Since(last) >= o.maxAge {
			o.refresh(ctx)
			dirty, last = false, time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
			dirty = true
			// Fold a burst of changes (a terraform apply) into one count per interval.
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		case <-tick.C:
		}
	}
}

func (o *objectCounts) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := o.st.Count(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn("metrics: cannot count objects; /metrics keeps the last counts", "err", err)
		}
		return
	}
	o.mu.Lock()
	o.counts = &c
	o.mu.Unlock()
}

func (o *objectCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- routersDesc
	ch <- objectsDesc
}

func (o *objectCounts) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	c := o.counts
	o.mu.Unlock()
	if c == nil {
		return // not counted yet: no numbers rather than zeros
	}
	for _, s := range []string{api.RouterUnenrolled, api.RouterOnline, api.RouterOffline} {
		ch <- prometheus.MustNewConstMetric(routersDesc, prometheus.GaugeValue, float64(c.RoutersByStatus[s]), s)
	}
	for name, n := range map[string]int{store.Routers: c.Routers, store.Services: c.Services, store.Identities: c.Identities, store.ServicePolicies: c.ServicePolicies} {
		ch <- prometheus.MustNewConstMetric(objectsDesc, prometheus.GaugeValue, float64(n), name)
	}
}

// metricsComponent serves /metrics over plain HTTP: it listens on loopback by default and
// carries no secrets.
type metricsComponent struct {
	handler http.Handler
}

func (m *metricsComponent) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func newMetricsComponent(reg *prometheus.Registry) *metricsComponent {
	return &metricsComponent{handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
}
