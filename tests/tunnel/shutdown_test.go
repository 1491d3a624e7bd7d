package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/router/dnstest"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// download serves size random bytes per connection in chunks, pausing between them, with no
// length: the reader knows the end only from the connection's end, as with a raw TCP
// download, an nc pipe or HTTP without a length. It returns the port and the data.
func download(t *testing.T, size int, pause time.Duration) (int, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	port := stack.Serve(t, func(c net.Conn) {
		defer c.Close()
		for off := 0; off < len(data); off += 64 << 10 {
			if _, err := c.Write(data[off:min(off+64<<10, len(data))]); err != nil {
				return
			}
			time.Sleep(pause)
		}
	})
	return port, data
}

// TestTunnelStopNeverEndsADownloadCleanly: SIGTERM while a program reads a download through
// the tunnel. Without a drain time the program's connection is reset at once; with one, a
// download that finishes within it completes intact and one that does not is reset when the
// time is up. Never a clean end of a stream that did not end.
func TestTunnelStopNeverEndsADownloadCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: real processes")
	}
	c := newCustomer(t)
	const fqdn = "files.customerdomain.me"
	c.dns.Set(fqdn, "127.0.0.1")
	// 64 MiB at 64 KiB per 10 ms: 10 s at best, so still running when a 3 s drain is up.
	slowPort, _ := download(t, 64<<20, 10*time.Millisecond)
	// 4 MiB at 64 KiB per 10 ms: ~0.7 s, within a 5 s drain.
	shortPort, short := download(t, 4<<20, 10*time.Millisecond)
	svc := control.Service{ID: "files", Name: "files", Address: fqdn, Port: slowPort, Protocol: "tcp",
		PortRanges: []control.PortRange{{From: shortPort, To: shortPort}}}
	c.router(t, "r1", svc)
	c.s.Update(policy([]control.Service{svc}, "r1"))
	upstream := dnstest.Start(t, nil)

	t.Run("no drain: reset at once", func(t *testing.T) {
		tun := startTunnel(t, c.identityFile(t, "app"), upstream.Addr, "--drain", "0")
		addr, _ := tun.lookup(t, fqdn)
		got, ended := readAll(t, netip.AddrPortFrom(addr, uint16(slowPort)))
		time.Sleep(200 * time.Millisecond) // mid-download
		tun.Signal(syscall.SIGTERM)
		err := <-ended
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the download ended with %v after %d bytes, want a connection reset (a clean end would pass a cut file off as complete)", err, len(<-got))
		}
		if code, ok := tun.Wait(10 * time.Second); !ok || code != 0 {
			t.Fatalf("tunnel exit %d (exited %v)", code, ok)
		}
	})

	t.Run("drain: finished intact, the rest reset", func(t *testing.T) {
		tun := startTunnel(t, c.identityFile(t, "app"), upstream.Addr, "--drain", "3s")
		addr, _ := tun.lookup(t, fqdn)
		slowGot, slowEnded := readAll(t, netip.AddrPortFrom(addr, uint16(slowPort)))
		shortGot, shortEnded := readAll(t, netip.AddrPortFrom(addr, uint16(shortPort)))
		time.Sleep(100 * time.Millisecond)
		stopped := time.Now()
		tun.Signal(syscall.SIGTERM)
		// New connections are refused while draining.
		harness.WaitFor(t, 5*time.Second, "the listeners to close", func() bool {
			conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(shortPort)).String(), time.Second)
			if err == nil {
				conn.Close()
			}
			return err != nil
		})
		if err := <-shortEnded; err != nil {
			t.Fatalf("a download that finishes within the drain time ended with %v", err)
		}
		if b := <-shortGot; sha256.Sum256(b) != sha256.Sum256(short) {
			t.Fatalf("drained download: %d bytes, want the %d served, intact", len(b), len(short))
		}
		err := <-slowEnded
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("a download still running when the drain time was up ended with %v after %d bytes, want a reset", err, len(<-slowGot))
		}
		if took := time.Since(stopped); took < 2*time.Second {
			t.Fatalf("reset %v after SIGTERM, before the 3 s drain time", took)
		}
		if code, ok := tun.Wait(10 * time.Second); !ok || code != 0 {
			t.Fatalf("tunnel exit %d (exited %v)", code, ok)
		}
	})
}

// readAll connects to addr and reads until the stream ends; it delivers what it read and how
// the stream ended (nil: a clean end).
func readAll(t *testing.T, addr netip.AddrPort) (chan []byte, chan error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	got, ended := make(chan []byte, 1), make(chan error, 1)
	go func() {
		var buf bytes.Buffer
		_, err := io.Copy(&buf, conn)
		got <- buf.Bytes()
		ended <- err
	}()
	return got, ended
}

// TestTunnelStartsWhileTheControllerIsDown: a workload host that boots during a controller
// outage. The tunnel serves DNS from the service list it saved next to the identity, and the
// first connection through it works within 2 s of the controller being back.
func TestTunnelStartsWhileTheControllerIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: real processes")
	}
	ctx := context.Background()
	c := harness.StartController(t)
	const fqdn = "echo.customer.test"
	customerDNS := dnstest.Start(t, map[string]string{fqdn: "127.0.0.1"})
	port := stack.Serve(t, stack.Echo)
	c.StartRouter(t, "edge-1", []string{"edge"}, "--dns-server", customerDNS.Addr)
	if _, err := c.API.CreateService(ctx, api.ServiceCreate{Name: "echo", Address: fqdn, Port: port, RouterRoles: []string{"edge"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.API.CreateServicePolicy(ctx, api.ServicePolicyCreate{Name: "apps-echo", IdentityRoles: []string{"apps"}, ServiceNames: []string{"echo"}}); err != nil {
		t.Fatal(err)
	}
	_, idFile := c.NewIdentity(t, "app", "apps")
	upstream := dnstest.Start(t, nil)

	first := startTunnel(t, idFile, upstream.Addr)
	harness.WaitFor(t, 5*time.Second, "the service name", func() bool { a, _ := first.lookup(t, fqdn); return a.IsValid() })
	first.Terminate(t, 10*time.Second)

	c.Proc.Kill()
	tun := startTunnel(t, idFile, upstream.Addr, "--drain", "0")
	addr, rcode := tun.lookup(t, fqdn)
	if !addr.IsValid() {
		t.Fatalf("with the controller down the tunnel does not serve the saved name (rcode %s):\n%s", dns.RcodeToString[rcode], tun.Output())
	}
	c.Restart(t)
	took := harness.WaitFor(t, 2*time.Second, "the first connection after the controller is back", func() bool {
		conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			return false
		}
		b := make([]byte, 4)
		_, err = io.ReadFull(conn, b)
		return err == nil && string(b) == "ping"
	})
	t.Logf("first echo through the tunnel %v after the controller's API answered again", took.Round(time.Millisecond))
}
