// Package metrics defines the router's Prometheus metrics: control-channel state, reconnects,
// certificate renewals, assigned services and per-service health.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ztna/ztna/internal/control"
)

// Router holds the router's collectors.
type Router struct {
	connected       prometheus.Gauge
	reconnects      prometheus.Counter
	renewals        *prometheus.CounterVec
	certExpiry      prometheus.Gauge
	assigned        prometheus.Gauge
	serviceResolves *prometheus.GaugeVec
	serviceReaches  *prometheus.GaugeVec
}

// New creates the collectors and registers them (plus Go and process collectors) on reg.
func New(reg prometheus.Registerer) *Router {
	m := &Router{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_router_control_connected",
			Help: "1 while the control channel to the controller is up, else 0.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ztna_router_control_reconnects_total",
			Help: "Control-channel connection attempts after the first.",
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_router_cert_renewals_total",
			Help: "Certificate renewals over the control channel, by result.",
		}, []string{"result"}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_router_cert_expiry_timestamp_seconds",
			Help: "When the router's current certificate expires (unix seconds).",
		}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_router_assigned_services",
			Help: "Services currently assigned to this router.",
		}),
		serviceResolves: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ztna_router_service_resolvable",
			Help: "1 when the service's address resolves from this router.",
		}, []string{"service", "address", "port"}),
		serviceReaches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ztna_router_service_reachable",
			Help: "1 when the service's port accepts connections from this router.",
		}, []string{"service", "address", "port"}),
	}
	reg.MustRegister(m.connected, m.reconnects, m.renewals, m.certExpiry, m.assigned, m.serviceResolves, m.serviceReaches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetConnected records the control-channel state.
func (m *Router) SetConnected(up bool) { m.connected.Set(b2f(up)) }

// Reconnect counts one reconnect attempt.
func (m *Router) Reconnect() { m.reconnects.Inc() }

// Renewal counts one renewal; ok false means it failed.
func (m *Router) Renewal(ok bool) {
	if ok {
		m.renewals.WithLabelValues("ok").Inc()
	} else {
		m.renewals.WithLabelValues("error").Inc()
	}
}

// SetCertExpiry records the current certificate's expiry.
func (m *Router) SetCertExpiry(t time.Time) { m.certExpiry.Set(float64(t.Unix())) }

// SetAssigned records the number of assigned services.
func (m *Router) SetAssigned(n int) { m.assigned.Set(float64(n)) }

// SetServiceHealth replaces the per-service health series with one round of results, so that
// unassigned services disappear.
func (m *Router) SetServiceHealth(results []control.ServiceHealth) {
	m.serviceResolves.Reset()
	m.serviceReaches.Reset()
	for _, h := range results {
		labels := prometheus.Labels{"service": h.ServiceName, "address": h.Address, "port": strconv.Itoa(h.Port)}
		m.serviceResolves.With(labels).Set(b2f(h.Resolvable))
		m.serviceReaches.With(labels).Set(b2f(h.Reachable))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
