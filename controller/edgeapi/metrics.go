package edgeapi

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge API's Prometheus collectors. Labels are route patterns and problem
// types, never raw paths or ids, so cardinality stays bounded.
type metrics struct {
	requests   *prometheus.CounterVec
	enrolments *prometheus.CounterVec
	renewals   *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_controller_http_requests_total",
			Help: "Edge API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		enrolments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_controller_enrolments_total",
			Help: "Enrolment attempts by outcome (ok, or the problem type such as key-used).",
		}, []string{"outcome"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztna_controller_identity_renewals_total",
			Help: "Identity certificate renewals by outcome (ok, or the problem type such as cert-expired).",
		}, []string{"outcome"}),
	}
}

// Collectors returns the edge API's metrics for registration.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.requests, s.metrics.enrolments, s.metrics.renewals}
}

func (m *metrics) request(route, method string, code int) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
}

func (m *metrics) enrolment(problemType string) {
	m.enrolments.WithLabelValues(outcome(problemType)).Inc()
}

func (m *metrics) renewal(problemType string) { m.renewals.WithLabelValues(outcome(problemType)).Inc() }

// outcome is "ok" or the last part of a problem type ("key-used").
func outcome(problemType string) string {
	if problemType == "" {
		return "ok"
	}
	return problemType[strings.LastIndex(problemType, ":")+1:]
}
