package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/netns"
	"github.com/ztna/ztna/internal/testenv"
)

// TestMain lets 'up' start this test binary as the demo server: up runs its own executable
// with "serve" inside the namespace.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		main()
		return
	}
	goleak.VerifyTestMain(m) // fails the tests when a goroutine outlives them
}

func startServe(t *testing.T) (dnsAddr, httpAddr string) {
	t.Helper()
	pick := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	dnsAddr, httpAddr = pick(), pick()
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.DiscardHandler), dnsAddr, httpAddr, "app.customer.internal", netip.MustParseAddr("10.9.9.9"), ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(ready); err == nil {
			return dnsAddr, httpAddr
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("serve did not become ready")
	return "", ""
}

func TestCustomerDNS(t *testing.T) {
	dnsAddr, _ := startServe(t)
	for _, tc := range []struct {
		name     string
		qtype    uint16
		net      string
		rcode    int
		answerIP string
	}{
		{"App.Customer.Internal.", dns.TypeA, "udp", dns.RcodeSuccess, "10.9.9.9"},
		{"app.customer.internal.", dns.TypeA, "tcp", dns.RcodeSuccess, "10.9.9.9"},
		{"app.customer.internal.", dns.TypeAAAA, "udp", dns.RcodeSuccess, ""},
		{"db.customer.internal.", dns.TypeA, "udp", dns.RcodeNameError, ""},
		{"example.com.", dns.TypeA, "udp", dns.RcodeRefused, ""},
	} {
		t.Run(tc.name+dns.TypeToString[tc.qtype]+"/"+tc.net, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, tc.qtype)
			c := &dns.Client{Net: tc.net, Timeout: 2 * time.Second}
			r, _, err := c.Exchange(m, dnsAddr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.rcode || !r.Authoritative {
				t.Fatalf("rcode %s, authoritative %v; want %s", dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tc.rcode])
			}
			if tc.answerIP == "" {
				if len(r.Answer) != 0 {
					t.Fatalf("answers %v, want none", r.Answer)
				}
				return
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != tc.answerIP {
				t.Fatalf("answers %v, want %s", r.Answer, tc.answerIP)
			}
		})
	}
}

func TestServiceHandler(t *testing.T) {
	_, httpAddr := startServe(t)
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/hello", nil)
	req.Host = "app.customer.internal"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello from app.customer.internal") ||
		!strings.Contains(string(body), "http://app.customer.internal/hello") || !strings.Contains(string(body), "came from 127.0.0.1:") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// fakeServices answers one reply of routes per ServiceRouters call, the last one again.
type fakeServices struct{ replies [][]api.ServiceRoute }

func (f *fakeServices) GetService(context.Context, string) (*api.Service, error) {
	return &api.Service{Name: "demo-app", Address: "app.customer.internal"}, nil
}

func (f *fakeServices) ServiceRouters(context.Context, string, ...apiclient.ListOption) ([]api.ServiceRoute, error) {
	r := f.replies[0]
	if len(f.replies) > 1 {
		f.replies = f.replies[1:]
	}
	return r, nil
}

func TestWaitService(t *testing.T) {
	route := func(name, status string, ok bool) api.ServiceRoute {
		return api.ServiceRoute{RouterName: name, Status: status, Resolvable: ok, Reachable: ok}
	}
	svc := func(routes ...api.ServiceRoute) []api.ServiceRoute { return routes }
	f := &fakeServices{replies: [][]api.ServiceRoute{
		svc(route("a", "offline", false), route("b", "online", false)),
		svc(route("a", "online", true), route("b", "online", false)),
		svc(route("a", "online", true), route("b", "online", false)),
		svc(route("a", "online", true), route("b", "online", true)),
	}}
	var out bytes.Buffer
	if err := waitService(context.Background(), &out, f, "id", 2); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines != 3 {
		t.Errorf("printed %d lines, want one per change:\n%s", lines, &out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	f = &fakeServices{replies: [][]api.ServiceRoute{svc(route("a", "online", true), route("b", "offline", false))}}
	if err := waitService(ctx, io.Discard, f, "id", 2); err == nil || !strings.Contains(err.Error(), "cannot reach app.customer.internal") {
		t.Fatalf("err = %v, want a timeout naming the target", err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if err := checkRoot(); err != nil {
		t.Skip(err)
	}
}

// TestUpDown builds the demo network in its own namespace and /30, checks that the host may
// query the customer DNS but not connect to the service, that link-router accepts only router
// veths, and that down leaves nothing behind.
func TestUpDown(t *testing.T) {
	testenv.Integration(t, "a network namespace and the demo processes")
	requireRoot(t)
	dir := t.TempDir()
	const ns, subnet = "ztna-demo-unit", "10.233.0.12/30"
	var out bytes.Buffer
	cmd := rootCommand(&out, io.Discard)
	cmd.SetArgs([]string{"up", "--state-dir", dir, "--namespace", ns, "--subnet", subnet, "--name", "svc.corp.example"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	down := func() error {
		c := rootCommand(io.Discard, io.Discard)
		c.SetArgs([]string{"down", "--state-dir", dir})
		return c.Execute()
	}
	t.Cleanup(func() { down() })
	var st state
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("up printed %q: %v", out.String(), err)
	}
	if st.FQDN != "svc.corp.example" || st.NSAddr.String() != "10.233.0.14" || st.DNSServer != "10.233.0.14:53" || !netns.Exists(ns) {
		t.Fatalf("state = %+v", st)
	}

	// From the host: DNS answers, the service is refused.
	m := new(dns.Msg)
	m.SetQuestion("svc.corp.example.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, st.DNSServer)
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("customer DNS from the host: %v %v", r, err)
	}
	if c, err := net.DialTimeout("tcp", "10.233.0.14:80", time.Second); err == nil {
		c.Close()
		t.Fatal("the host connected to the demo service")
	}
	// Inside the namespace the service answers.
	b, err := exec.Command("ip", "netns", "exec", ns, "curl", "-s", "-m", "2", "http://10.233.0.14/").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "Hello from svc.corp.example") {
		t.Fatalf("service inside the namespace: %v %s", err, b)
	}

	// Running up again keeps the running network.
	out.Reset()
	cmd = rootCommand(&out, io.Discard)
	cmd.SetArgs([]string{"up", "--state-dir", dir, "--namespace", ns, "--subnet", subnet, "--env"})
	if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), "DEMO_FQDN=svc.corp.example\n") {
		t.Fatalf("second up: %v %q", err, out.String())
	}

	// link-router refuses what is not a namespaced router.
	for _, addr := range []string{"127.0.0.1", "not-an-ip", "10.233.0.13"} {
		c := rootCommand(io.Discard, io.Discard)
		c.SetArgs([]string{"link-router", "--state-dir", dir, addr})
		if err := c.Execute(); err == nil {
			t.Errorf("link-router %s succeeded", addr)
		}
	}

	if err := down(); err != nil {
		t.Fatal(err)
	}
	if netns.Exists(ns) {
		t.Error("namespace left after down")
	}
	if exec.Command("nft", "list", "table", "inet", "ztna_demo_unit").Run() == nil || st.Table != "ztna_demo_unit" {
		t.Error("nftables table left after down")
	}
	if st.Process.Alive() {
		t.Error("demo server still runs after down")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left in the state dir: %v", entries)
	}
	if err := down(); err != nil {
		t.Errorf("second down: %v", err)
	}
}
