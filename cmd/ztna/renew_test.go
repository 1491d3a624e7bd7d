package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/client/clienttest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/internal/pki"
)

// run executes the ztna command line in this process until it returns or ctx ends.
func run(ctx context.Context, stdout, stderr io.Writer, args ...string) error {
	cmd := rootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetIn(strings.NewReader(""))
	return cmd.ExecuteContext(ctx)
}

func leafOf(t *testing.T, path string) (*enroll.IdentityFile, string) {
	t.Helper()
	f, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertPEM([]byte(f.Cert))
	if err != nil {
		t.Fatal(err)
	}
	return f, leaf.SerialNumber.Text(16)
}

func TestIdentityRenew(t *testing.T) {
	n := clienttest.Start(t, time.Hour)
	fresh, _ := n.Enrol(t, "fresh")
	deleted, deletedID := n.Enrol(t, "deleted")
	if err := n.API.DeleteIdentity(context.Background(), deletedID.ID); err != nil {
		t.Fatal(err)
	}
	expired, _ := n.Enrol(t, "expired")
	expire(t, n.Controller.CA, expired)
	before, serial := leafOf(t, fresh)

	for _, tc := range []struct {
		name, path string
		want       string // in stdout on success, in the error otherwise
		ok         bool
	}{
		{"valid certificate", fresh, "renewed identity fresh", true},
		{"deleted identity", deleted, "identity " + deletedID.ID + " was deleted", false},
		{"expired certificate", expired, "enrol again with a new enrolment token", false},
		{"no identity file", filepath.Join(t.TempDir(), "none.identity"), "enrol first with 'ztna identity enroll", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			orig, _ := os.ReadFile(tc.path)
			err := run(context.Background(), &stdout, &stderr, "identity", "renew", "--identity", tc.path)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v\n%s", err, stderr.String())
			}
			got := stdout.String()
			if err != nil {
				got = err.Error()
				if now, _ := os.ReadFile(tc.path); string(now) != string(orig) {
					t.Fatal("a refused renewal changed the identity file")
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("%q does not say %q", got, tc.want)
			}
		})
	}
	if t.Failed() {
		return
	}
	after, newSerial := leafOf(t, fresh)
	if newSerial == serial || after.Key == before.Key || after.Config.ID != before.Config.ID {
		t.Fatal("ztna identity renew did not write a new key and certificate for the same identity")
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode after renewal: %v %v", fi.Mode(), err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(fresh), ".*tmp*")); len(m) != 0 {
		t.Fatalf("temporary files left next to the identity file: %v", m)
	}
}

// expire replaces the certificate in an identity file by one of the same network, for the same
// key and identity, that has already expired.
func expire(t *testing.T, ca *pki.CA, path string) {
	t.Helper()
	f, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM([]byte(f.Key))
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := pki.NewCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueFromCSR(csr, api.KindIdentity, f.Config.ID, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	f.Cert = string(iss.ChainPEM)
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
}

// TestTunnelRenewsItsIdentity runs `ztna tunnel` with 2 s certificates through several renewals:
// programs keep reaching the service through the tunnel's DNS and listeners without a failure,
// the identity file is rewritten with each renewal, the expiry metric moves on, and after the
// tunnel stops the file lets a new command work although the enrolled certificate expired.
func TestTunnelRenewsItsIdentity(t *testing.T) {
	const lifetime = 2 * time.Second
	n := clienttest.Start(t, lifetime)
	path, _ := n.Enrol(t, "app")
	enrolled, enrolledSerial := leafOf(t, path)
	enrolledLeaf, err := pki.ParseCertPEM([]byte(enrolled.Cert))
	if err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	out, logs := &logging.Buffer{}, &logging.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, logs, "tunnel", "--identity", path, "--dns-listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
			"--address-pool", "127.79.0.0/24", "--refresh", "100ms", "--metrics-listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	}()
	dnsAddr := waitMatch(t, out, `DNS on (\S+) `)
	metricsAddr := waitMatch(t, logs, `"msg":"metrics and health","addr":"([^"]+)"`)

	serials := map[string]bool{enrolledSerial: true}
	expiries := map[string]bool{}
	begin := time.Now()
	conns := 0
	// Until the enrolled certificate has expired and the file held two renewed ones.
	for !time.Now().After(enrolledLeaf.NotAfter.Add(100*time.Millisecond)) || len(serials) < 3 {
		if time.Since(begin) > 5*lifetime {
			t.Fatalf("the identity file held %d certificates in %v, want the enrolled one and at least 2 renewed ones\n%s", len(serials), time.Since(begin), logs)
		}
		if err := throughTunnel(dnsAddr, n.Service.Port); err != nil {
			t.Fatalf("connection %d through the tunnel after %v: %v\n%s", conns, time.Since(begin), err, logs)
		}
		conns++
		_, s := leafOf(t, path)
		serials[s] = true
		if v, err := metric(metricsAddr, "ztna_tunnel_identity_cert_expiry_timestamp_seconds"); err == nil {
			expiries[v] = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("tunnel: %v", err)
	}
	if len(expiries) < 2 {
		t.Fatalf("the certificate expiry metric took %d values, want it to move with renewals", len(expiries))
	}
	if links := strings.Count(logs.String(), `"msg":"linked to hub"`); links != 1 {
		t.Fatalf("the tunnel linked to the hub %d times, want once", links)
	}
	t.Logf("%d connections through the tunnel in %v, none failed; %d certificates in the file", conns, time.Since(begin), len(serials))

	// A restart starts from the renewed certificate: the enrolled one has long expired.
	var stdout, stderr strings.Builder
	if err := run(context.Background(), &stdout, &stderr, "services", "--identity", path); err != nil || !strings.Contains(stdout.String(), clienttest.ServiceName) {
		t.Fatalf("services after the tunnel stopped: %v\n%s%s", err, stdout.String(), stderr.String())
	}
}

// throughTunnel resolves the service through the tunnel's DNS server and echoes through the
// local address it answers.
func throughTunnel(dnsAddr string, port int) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(clienttest.ServiceName), dns.TypeA)
	r, err := dns.Exchange(m, dnsAddr)
	if err != nil {
		return err
	}
	if len(r.Answer) != 1 {
		return fmt.Errorf("DNS answered %v", r)
	}
	ip := r.Answer[0].(*dns.A).A
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != "ping" {
		return errors.New("echo mismatch")
	}
	return nil
}

// metric returns the value of an unlabelled metric from a /metrics endpoint.
func metric(addr, name string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("no %s in /metrics", name)
	}
	return string(m[1]), nil
}

// waitMatch waits for re to match what buf collects and returns the first group.
func waitMatch(t *testing.T, buf *logging.Buffer, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := rx.FindStringSubmatch(buf.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", re, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
