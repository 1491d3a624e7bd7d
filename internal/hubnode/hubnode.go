// Package hubnode runs a hub (internal/hub) the way every deployment of one needs it — the
// controller's embedded hub and the standalone `ztna-router run --hub` alike: it feeds the hub
// the controller's snapshot in its control-channel form, admits on the fabric only the routers
// and identities the current snapshot knows (one deleted at the controller is refused from its
// next link on, also while the controller is unreachable), and exports each router's link
// health, round-trip time, load and static cost as metrics, so that routing decisions can be
// checked from outside.
package hubnode

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/hub"
)

// Node is a hub fed with controller snapshots. Serve it with Node.Serve (from hub.Hub).
type Node struct {
	*hub.Hub
	log   *slog.Logger
	state atomic.Pointer[state]
}

// state is what the last snapshot said, for admission and metrics.
type state struct {
	routers    map[string]int // id → static cost (ms)
	identities map[string]bool
	services   int
	policies   int
	version    uint64 // the controller's snapshot version (0: unversioned)
	at         time.Time
}

// New returns a node with no snapshot yet: it admits nobody until the first Update. cfg's
// Authorize, when set, is asked as well; cfg.Metrics also receives the per-router gauges.
func New(cfg hub.Config) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{log: cfg.Logger}
	n.state.Store(&state{routers: map[string]int{}, identities: map[string]bool{}})
	extra := cfg.Authorize
	cfg.Authorize = func(kind, id string) error {
		if err := n.admit(kind, id); err != nil {
			return err
		}
		if extra != nil {
			return extra(kind, id)
		}
		return nil
	}
	n.Hub = hub.New(cfg)
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(collector{n})
	}
	return n
}

// ErrUnknownPeer refuses a link from a router or identity the snapshot does not list.
var ErrUnknownPeer = errors.New("not known to this hub")

func (n *Node) admit(kind, id string) error {
	st := n.state.Load()
	known := false
	switch kind {
	case api.KindRouter:
		_, known = st.routers[id]
	case api.KindIdentity:
		known = st.identities[id]
	}
	if !known {
		if st.at.IsZero() {
			return fmt.Errorf("%s %s: %w yet (no policy snapshot received)", kind, id, ErrUnknownPeer)
		}
		return fmt.Errorf("%s %s: %w (deleted at the controller?)", kind, id, ErrUnknownPeer)
	}
	return nil
}

// Update installs a snapshot: dials from now on are authorised and routed by it.
func (n *Node) Update(s control.HubSnapshot) {
	st := &state{routers: make(map[string]int, len(s.Routers)), identities: make(map[string]bool, len(s.Identities)),
		services: len(s.Services), policies: len(s.Policies), version: s.Version, at: time.Now()}
	for _, r := range s.Routers {
		st.routers[r.ID] = r.Cost
	}
	for _, i := range s.Identities {
		st.identities[i.ID] = true
	}
	// Admission state first: a link waiting in the hub for this snapshot (hub.AdmitWait) is
	// checked against both the moment the hub installs it.
	n.state.Store(st)
	n.Hub.Update(Convert(s))
	n.log.Info("policy snapshot installed", "version", s.Version, "services", len(s.Services), "routers", len(s.Routers),
		"identities", len(s.Identities), "policies", len(s.Policies))
}

// HasSnapshot reports whether any snapshot was installed.
func (n *Node) HasSnapshot() bool { return !n.state.Load().at.IsZero() }

// Convert turns the control channel's snapshot into the hub's.
func Convert(s control.HubSnapshot) hub.Snapshot {
	var out hub.Snapshot
	for _, svc := range s.Services {
		out.Services = append(out.Services, hub.Service{Service: svc.Service, RouterRoles: svc.RouterRoles})
	}
	for _, r := range s.Routers {
		out.Routers = append(out.Routers, hub.Router{ID: r.ID, Roles: r.Roles, Cost: r.Cost, EnrolledAt: r.EnrolledAt})
	}
	for _, i := range s.Identities {
		out.Identities = append(out.Identities, hub.Identity{ID: i.ID, Roles: i.Roles})
	}
	for _, p := range s.Policies {
		out.Policies = append(out.Policies, hub.Policy{IdentityRoles: p.IdentityRoles, ServiceNames: p.ServiceNames})
	}
	return out
}

// collector exports the hub's view of every router link at scrape time.
type collector struct{ n *Node }

var (
	descLinks = prometheus.NewDesc("ztna_hub_router_link_count", "Links from a router to this hub, by health (healthy: the router answered within three keepalive intervals).",
		[]string{"router", "healthy"}, nil)
	descRTT = prometheus.NewDesc("ztna_hub_router_rtt_seconds", "Keepalive round-trip time (moving average) of a router's best healthy link; part of its routing cost.",
		[]string{"router"}, nil)
	descStreams = prometheus.NewDesc("ztna_hub_router_streams", "Streams open to a router over its links; its load, part of its routing cost.",
		[]string{"router"}, nil)
	descCost = prometheus.NewDesc("ztna_hub_router_static_cost_milliseconds", "Operator-set static cost of a linked router (from the snapshot), added to RTT and load when routing.",
		[]string{"router"}, nil)
	descSnapshotAge = prometheus.NewDesc("ztna_hub_snapshot_timestamp_seconds", "When the policy snapshot in use was installed (0: none yet).", nil, nil)
	descSnapshot    = prometheus.NewDesc("ztna_hub_snapshot_objects", "Objects in the policy snapshot in use.", []string{"collection"}, nil)
	descVersion     = prometheus.NewDesc("ztna_hub_snapshot_version", "Version of the policy snapshot in use, as the controller numbered it (0: unversioned).", nil, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinks, descRTT, descStreams, descCost, descSnapshotAge, descSnapshot, descVersion} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.state.Load()
	type agg struct {
		healthy, unhealthy, streams int
		rtt                         time.Duration
	}
	byRouter := map[string]*agg{}
	for _, r := range c.n.Routers() {
		a := byRouter[r.ID]
		if a == nil {
			a = &agg{}
			byRouter[r.ID] = a
		}
		a.streams += r.Streams
		if r.Healthy {
			a.healthy++
			if a.rtt == 0 || r.RTT < a.rtt {
				a.rtt = r.RTT
			}
		} else {
			a.unhealthy++
		}
	}
	for id, a := range byRouter {
		ch <- prometheus.MustNewConstMetric(descLinks, prometheus.GaugeValue, float64(a.healthy), id, "true")
		ch <- prometheus.MustNewConstMetric(descLinks, prometheus.GaugeValue, float64(a.unhealthy), id, "false")
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(a.streams), id)
		if a.healthy > 0 {
			ch <- prometheus.MustNewConstMetric(descRTT, prometheus.GaugeValue, a.rtt.Seconds(), id)
		}
		if cost, ok := st.routers[id]; ok {
			ch <- prometheus.MustNewConstMetric(descCost, prometheus.GaugeValue, float64(cost), id)
		}
	}
	var at float64
	if !st.at.IsZero() {
		at = float64(st.at.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descSnapshotAge, prometheus.GaugeValue, at)
	ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(st.version))
	for coll, n := range map[string]int{"services": st.services, "routers": len(st.routers), "identities": len(st.identities), "policies": st.policies} {
		ch <- prometheus.MustNewConstMetric(descSnapshot, prometheus.GaugeValue, float64(n), coll)
	}
}
