package hub

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/ztna/ztna/internal/fabric"
)

// Limits bound what one client identity can make a hub hold, whatever it sends. Each refusal is
// a LimitReached response naming the limit (its config key), counted in
// ztna_hub_limit_refusals_total{limit=<key>}. The yaml keys are the controller's fabric_limits.
type Limits struct {
	// StreamsPerLink: streams open on one client link, StreamsPerIdentity across all of an
	// identity's links (until both ends closed them), SetupsPerLink: streams of one link not
	// yet past their setup (request, policy check, router attempts). All three are refused by
	// the link's reader itself, before any goroutine starts for the stream.
	StreamsPerLink     int `yaml:"streams_per_link"`
	StreamsPerIdentity int `yaml:"streams_per_identity"`
	SetupsPerLink      int `yaml:"setups_per_link"`
	// RequestTimeout: how long a new stream may take to send its request.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// WatchesPerLink: service-list watches (op 4) open on one link.
	WatchesPerLink int `yaml:"watches_per_link"`
	// LinksPerIdentity: links one identity may have up at once.
	LinksPerIdentity int `yaml:"links_per_identity"`
	// StreamOpensPerSecond and StreamOpenBurst pace the streams one identity opens, across
	// its links: beyond the burst, the hub reads nothing more from the link until the rate
	// allows the next open. Pacing costs the hub nothing, where refusing costs a read and a
	// write per stream: without it, one identity opening 130,000 streams a second kept both
	// cores of a hub busy and other identities' dials took 340 ms (p99) instead of 5.
	StreamOpensPerSecond int `yaml:"stream_opens_per_second"`
	StreamOpenBurst      int `yaml:"stream_open_burst"`
	// RefusalLogInterval: an identity's refused dials and streams are logged once per interval,
	// the first at once and the rest as one summary line with counts.
	RefusalLogInterval time.Duration `yaml:"refusal_log_interval"`
	// LegacyPeers lets routers and identities that speak only ztna-fabric/1 (from before the
	// per-link memory budget) link, each such link holding at most fabric.LegacyMaxStreams
	// streams; off, they are refused with a message that names this key. A transition
	// setting, for the time an upgrade takes: such a peer can make the hub hold 4 MiB per
	// stream, not the budget's 16 KiB.
	LegacyPeers bool `yaml:"legacy_peers"`
}

// DefaultLimits are generous for a client tunnel (thousands of connections, one watch) and keep
// a flood from one identity within tens of megabytes of hub memory (see ARCHITECTURE.md).
func DefaultLimits() Limits {
	return Limits{
		StreamsPerLink:       8192,
		StreamsPerIdentity:   16384,
		SetupsPerLink:        128,
		RequestTimeout:       5 * time.Second,
		WatchesPerLink:       4,
		LinksPerIdentity:     8,
		StreamOpensPerSecond: 5000,
		StreamOpenBurst:      2000,
		RefusalLogInterval:   10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *int }{
		{&l.StreamsPerLink, &d.StreamsPerLink}, {&l.StreamsPerIdentity, &d.StreamsPerIdentity},
		{&l.SetupsPerLink, &d.SetupsPerLink}, {&l.WatchesPerLink, &d.WatchesPerLink}, {&l.LinksPerIdentity, &d.LinksPerIdentity},
		{&l.StreamOpensPerSecond, &d.StreamOpensPerSecond}, {&l.StreamOpenBurst, &d.StreamOpenBurst},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = d.RequestTimeout
	}
	if l.RefusalLogInterval == 0 {
		l.RefusalLogInterval = d.RefusalLogInterval
	}
	return l
}

// Validate says which limit is out of range, by its key.
func (l Limits) Validate() error {
	for key, v := range map[string]int{
		"streams_per_link": l.StreamsPerLink, "streams_per_identity": l.StreamsPerIdentity, "setups_per_link": l.SetupsPerLink,
		"watches_per_link": l.WatchesPerLink, "links_per_identity": l.LinksPerIdentity,
		"stream_opens_per_second": l.StreamOpensPerSecond, "stream_open_burst": l.StreamOpenBurst,
	} {
		if v < 1 {
			return fmt.Errorf("%s: %d; use at least 1", key, v)
		}
	}
	if l.RequestTimeout < 100*time.Millisecond {
		return fmt.Errorf("request_timeout: %v; use at least 100ms", l.RequestTimeout)
	}
	if l.RefusalLogInterval < time.Second {
		return fmt.Errorf("refusal_log_interval: %v; use at least 1s", l.RefusalLogInterval)
	}
	return nil
}

// RegisterFlags adds a --fabric-<key> flag for each limit (ztna-controller dev, ztna-router
// run --hub), defaulting to l.
func (l *Limits) RegisterFlags(f *pflag.FlagSet) {
	f.IntVar(&l.StreamsPerLink, "fabric-streams-per-link", l.StreamsPerLink, "hub: streams a client may have open on one link")
	f.IntVar(&l.StreamsPerIdentity, "fabric-streams-per-identity", l.StreamsPerIdentity, "hub: streams an identity may have open across its links")
	f.IntVar(&l.SetupsPerLink, "fabric-setups-per-link", l.SetupsPerLink, "hub: streams of one link that may be in setup at once")
	f.DurationVar(&l.RequestTimeout, "fabric-request-timeout", l.RequestTimeout, "hub: how long a new stream may take to send its request")
	f.IntVar(&l.WatchesPerLink, "fabric-watches-per-link", l.WatchesPerLink, "hub: service-list watches a client may have open on one link")
	f.IntVar(&l.LinksPerIdentity, "fabric-links-per-identity", l.LinksPerIdentity, "hub: links an identity may have up at once")
	f.IntVar(&l.StreamOpensPerSecond, "fabric-stream-opens-per-second", l.StreamOpensPerSecond, "hub: streams an identity may open per second across its links (beyond the burst, its links are read no faster)")
	f.IntVar(&l.StreamOpenBurst, "fabric-stream-open-burst", l.StreamOpenBurst, "hub: streams an identity may open at once before --fabric-stream-opens-per-second paces it")
	f.DurationVar(&l.RefusalLogInterval, "fabric-refusal-log-interval", l.RefusalLogInterval, "hub: an identity's refusals are logged once per interval, then summarised with counts")
	f.BoolVar(&l.LegacyPeers, "fabric-legacy-peers", l.LegacyPeers, fmt.Sprintf("let fabric peers that speak only %s (from before the per-link memory budget) link, at most %d streams a link: a hub's routers and identities; ztna-router run: also its hubs",
		fabric.ALPN, fabric.LegacyMaxStreams))
}

// Limit names: the config keys, and the label of ztna_hub_limit_refusals_total.
const (
	limitStreamsPerLink     = "streams_per_link"
	limitStreamsPerIdentity = "streams_per_identity"
	limitSetupsPerLink      = "setups_per_link"
	limitWatchesPerLink     = "watches_per_link"
	limitLinksPerIdentity   = "links_per_identity"
	limitLegacyPeers        = "legacy_peers"
)

// streamLimitKey names the limits a link's reader enforces.
var streamLimitKey = map[fabric.StreamLimit]string{
	fabric.LimitStreams:       limitStreamsPerLink,
	fabric.LimitSetups:        limitSetupsPerLink,
	fabric.LimitSharedStreams: limitStreamsPerIdentity,
	fabric.LimitLegacyStreams: limitLegacyPeers,
}

// slots counts what is held against a limit.
type slots struct{ n atomic.Int32 }

// take takes a slot unless max are taken.
func (s *slots) take(max int) bool {
	if int(s.n.Add(1)) > max {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) give() { s.n.Add(-1) }
