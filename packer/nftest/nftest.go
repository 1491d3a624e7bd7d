// Package nftest puts an nftables ruleset to work in two throw-away network namespaces joined by
// a veth pair ("router" runs the ruleset, "peer" plays the outside world), so tests can check what
// the ruleset of a router image lets in and out. It needs root, ip(8) and nft(8).
package nftest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ztna/ztna/internal/testenv"
)

// Addresses on the veth link (TEST-NET-1, never routed anywhere).
const (
	RouterAddr = "192.0.2.2"
	// PeerAddr and PeerAltAddr both sit on the peer side, so a test can allow one and not the
	// other.
	PeerAddr    = "192.0.2.1"
	PeerAltAddr = "192.0.2.3"
)

// Pair is the two namespaces.
type Pair struct {
	Router, Peer string
}

var seq atomic.Int64

// New creates the namespaces and removes them when the test ends. Without root, and under
// -short, it skips the test.
func New(t testing.TB) *Pair {
	t.Helper()
	testenv.Integration(t, "network namespaces")
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (scripts/deps.sh test installs it): %v", tool, err)
		}
	}
	id := fmt.Sprintf("ztnanft%d-%d", os.Getpid(), seq.Add(1))
	p := &Pair{Router: id + "r", Peer: id + "p"}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", p.Router).Run()
		_ = exec.Command("ip", "netns", "del", p.Peer).Run()
	})
	vr, vp := "v"+id[len(id)-6:]+"r", "v"+id[len(id)-6:]+"p"
	steps := [][]string{
		{"netns", "add", p.Router},
		{"netns", "add", p.Peer},
		{"link", "add", vr, "netns", p.Router, "type", "veth", "peer", "name", vp, "netns", p.Peer},
		{"-n", p.Router, "addr", "add", RouterAddr + "/24", "dev", vr},
		{"-n", p.Peer, "addr", "add", PeerAddr + "/24", "dev", vp},
		{"-n", p.Peer, "addr", "add", PeerAltAddr + "/24", "dev", vp},
		{"-n", p.Router, "link", "set", "lo", "up"},
		{"-n", p.Peer, "link", "set", "lo", "up"},
		{"-n", p.Router, "link", "set", vr, "up"},
		{"-n", p.Peer, "link", "set", vp, "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return p
}

// LoadRuleset loads an nftables file into the router namespace.
func (p *Pair) LoadRuleset(t testing.TB, path string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", p.Router, "nft", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("loading %s into the router namespace: %v\n%s", path, err, out)
	}
}

// Listen accepts TCP connections on addr inside namespace ns, answering each with "ok".
func (p *Pair) Listen(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
	return ln
}

// Connect dials raddr from namespace ns (from local address laddr when not empty) and reads the
// listener's answer. It returns an error when the connection or the answer does not arrive
// within timeout.
func (p *Pair) Connect(ns, laddr, raddr string, timeout time.Duration) error {
	var conn net.Conn
	err := inNetns(ns, func() (err error) {
		d := net.Dialer{Timeout: timeout}
		if laddr != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(laddr)}
		}
		conn, err = d.Dial("tcp4", raddr)
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil {
		return err
	}
	if string(buf) != "ok" {
		return fmt.Errorf("unexpected answer %q", buf)
	}
	return nil
}

// inNetns runs fn on a thread switched into namespace name. Sockets created by fn stay in that
// namespace after the thread switches back.
func inNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the wrong namespace: keep it locked so the runtime discards it.
		return errors.Join(fnErr, fmt.Errorf("returning from namespace %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Ports the checks listen on.
const (
	inboundPort  = "7000"
	outboundPort = "7001"
)

// CheckDefaultDenyInbound loads the ruleset at path into the router namespace and checks that it
// drops inbound TCP from the peer, keeps loopback working, and lets the replies to a connection
// the router opened come back. It first checks that the inbound connection works without the
// ruleset, so a broken test network cannot pass for a working firewall.
func (p *Pair) CheckDefaultDenyInbound(t testing.TB, path string) {
	t.Helper()
	p.Listen(t, p.Router, "0.0.0.0:"+inboundPort)
	p.Listen(t, p.Peer, PeerAddr+":"+outboundPort)
	if err := p.Connect(p.Peer, "", RouterAddr+":"+inboundPort, 5*time.Second); err != nil {
		t.Fatalf("without the ruleset the peer cannot reach the router, the test network is broken: %v", err)
	}
	p.LoadRuleset(t, path)
	if err := p.Connect(p.Peer, "", RouterAddr+":"+inboundPort, time.Second); err == nil {
		t.Error("inbound TCP from the peer got through the ruleset")
	}
	if err := p.Connect(p.Router, "", "127.0.0.1:"+inboundPort, 5*time.Second); err != nil {
		t.Errorf("loopback inside the router is blocked: %v", err)
	}
	if err := p.Connect(p.Router, "", PeerAddr+":"+outboundPort, 5*time.Second); err != nil {
		t.Errorf("outbound connection from the router (and its replies) blocked: %v", err)
	}
}
