// Package health checks, from the router, whether each assigned service's FQDN resolves and its
// port accepts TCP connections — what the controller's API shows per router and per service, and
// what tells an operator that the customer's DNS or firewall is in the way.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/targets"
)

// Check resolves address with r and connects to port on the resolved addresses (first success
// wins). The result's Error says what failed in words an operator can act on.
func Check(ctx context.Context, r *net.Resolver, address string, port int, timeout time.Duration) control.ServiceHealth {
	h := control.ServiceHealth{Address: address, Port: port, CheckedAt: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ips, err := r.LookupHost(ctx, address)
	if err != nil {
		h.Error = fmt.Sprintf("cannot resolve %s: %s", address, dnsReason(err))
		return h
	}
	h.Resolvable = true
	d := net.Dialer{}
	var errs []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			c.Close()
			h.Reachable = true
			return h
		}
		errs = append(errs, err)
	}
	h.Error = fmt.Sprintf("%s resolves to %v but port %d is unreachable: %v", address, ips, port, errors.Join(errs...))
	return h
}

func dnsReason(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return "no such host"
		case de.IsTimeout:
			return "DNS server did not answer in time"
		}
		return de.Err
	}
	return err.Error()
}

// Checker re-checks every assigned target periodically and whenever the assignment changes.
type Checker struct {
	Targets  *targets.Set
	Resolver *net.Resolver
	Interval time.Duration // between rounds; 0 means 10 s
	Timeout  time.Duration // per target; 0 means 3 s
	Logger   *slog.Logger
	// OnResults, when set, receives every completed round (for metrics).
	OnResults func([]control.ServiceHealth)

	mu      sync.Mutex
	results []control.ServiceHealth
}

// Results returns the last completed round.
func (c *Checker) Results() []control.ServiceHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.results
}

// Run checks until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	interval := c.Interval
	if interval == 0 {
		interval = 10 * time.Second
	}
	for {
		changed := c.Targets.Changed()
		if c.Targets.Loaded() {
			c.round(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(interval):
		}
	}
}

// maxParallel bounds concurrent checks so that a router with many services does not open
// hundreds of sockets at once.
const maxParallel = 16

func (c *Checker) round(ctx context.Context) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	snap := c.Targets.Snapshot()
	jobs := snap.Services
	results := make([]control.ServiceHealth, len(jobs))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h := checkService(ctx, c.Resolver, j, timeout)
			results[i] = h
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	prev := c.results
	c.results = results
	c.mu.Unlock()
	c.logTransitions(prev, results)
	if c.OnResults != nil {
		c.OnResults(results)
	}
}

// checkService checks a service on its main port. UDP has no handshake to probe, so for a UDP
// service only resolution is checked and the result says so instead of claiming reachability.
func checkService(ctx context.Context, r *net.Resolver, svc control.Service, timeout time.Duration) control.ServiceHealth {
	var h control.ServiceHealth
	if svc.Protocol == "udp" {
		h = control.ServiceHealth{Address: svc.Address, Port: svc.Port, CheckedAt: time.Now().UTC()}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if _, err := r.LookupHost(rctx, svc.Address); err != nil {
			h.Error = fmt.Sprintf("cannot resolve %s: %s", svc.Address, dnsReason(err))
		} else {
			h.Resolvable = true
			h.Error = "UDP reachability is not probed"
		}
	} else {
		h = Check(ctx, r, svc.Address, svc.Port, timeout)
	}
	h.ServiceID, h.ServiceName = svc.ID, svc.Name
	return h
}

// logTransitions logs a target only when its health changes, so that a broken service does not
// flood the log every round.
func (c *Checker) logTransitions(prev, cur []control.ServiceHealth) {
	if c.Logger == nil {
		return
	}
	old := map[string]control.ServiceHealth{}
	for _, h := range prev {
		old[h.ServiceID] = h
	}
	for _, h := range cur {
		o, seen := old[h.ServiceID]
		if seen && o.Resolvable == h.Resolvable && o.Reachable == h.Reachable {
			continue
		}
		attrs := []any{"service", h.ServiceName, "service_id", h.ServiceID, "address", h.Address, "port", h.Port,
			"resolvable", h.Resolvable, "reachable", h.Reachable}
		if h.Reachable {
			c.Logger.Info("service target healthy", attrs...)
		} else {
			c.Logger.Warn("service target unhealthy", append(attrs, "error", h.Error)...)
		}
	}
}
