package tunnel

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	names           prometheus.Gauge
	listeners       prometheus.Gauge
	active          prometheus.Gauge
	conns           *prometheus.CounterVec
	dnsQueries      *prometheus.CounterVec
	refreshFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		names: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_tunnel_service_names", Help: "Service names the tunnel answers in DNS."}),
		listeners: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_tunnel_listeners", Help: "Local listeners (one per service name and port)."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ztna_tunnel_active_connections", Help: "Connections being carried over the overlay."}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_tunnel_connections_total", Help: "Accepted connections by outcome (relayed, dial_failed)."}, []string{"result"}),
		dnsQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_tunnel_dns_queries_total", Help: "DNS queries by answer (local, forwarded, failed, servfail_no_list: before any service list is known)."}, []string{"answer"}),
		refreshFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ztna_tunnel_refresh_failures_total", Help: "Failed reads of the identity's service list."}),
	}
	if reg != nil {
		reg.MustRegister(m.names, m.listeners, m.active, m.conns, m.dnsQueries, m.refreshFailures)
	}
	return m
}
