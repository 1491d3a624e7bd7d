package controller

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ztna/ztna/controller/store"
)

// newRegistry holds the controller's metrics: runtime, edge API, and the object counts read
// from the store at scrape time. Components attached later register their own collectors.
func newRegistry(st store.Store, extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &storeCollector{st: st})
	reg.MustRegister(extra...)
	return reg
}

// storeCollector reports routers by status and the size of each collection.
type storeCollector struct{ st store.Store }

var (
	routersDesc = prometheus.NewDesc("ztna_controller_routers", "Routers by status.", []string{"status"}, nil)
	objectsDesc = prometheus.NewDesc("ztna_controller_objects", "Objects per collection.", []string{"collection"}, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- routersDesc
	ch <- objectsDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if routers, err := c.st.ListRouters(ctx); err == nil {
		byStatus := map[string]int{"unenrolled": 0, "online": 0, "offline": 0}
		for _, r := range routers {
			byStatus[r.Status]++
		}
		for s, n := range byStatus {
			ch <- prometheus.MustNewConstMetric(routersDesc, prometheus.GaugeValue, float64(n), s)
		}
	}
	count := func(name string, n int, err error) {
		if err == nil {
			ch <- prometheus.MustNewConstMetric(objectsDesc, prometheus.GaugeValue, float64(n), name)
		}
	}
	svcs, err := c.st.ListServices(ctx)
	count(store.Services, len(svcs), err)
	ids, err := c.st.ListIdentities(ctx)
	count(store.Identities, len(ids), err)
	pols, err := c.st.ListServicePolicies(ctx)
	count(store.ServicePolicies, len(pols), err)
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
