package hubmode

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// certifier issues hub certificates from a CA, naming id, until it is told to fail.
type certifier struct {
	ca    *pki.CA
	id    string
	fail  atomic.Bool
	calls atomic.Int32
}

func (c *certifier) Certify(_ context.Context, kind string, csrPEM []byte) ([]byte, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, errors.New("control channel is not connected")
	}
	if kind != control.CertKindHub {
		return nil, errors.New("wrong kind " + kind)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	iss, err := c.ca.IssueFromCSR(csr, api.KindHub, c.id, time.Hour)
	if err != nil {
		return nil, err
	}
	return iss.ChainPEM, nil
}

func newHub(t *testing.T, dir string, ca *pki.CA, cert Certifier) *Hub {
	t.Helper()
	h, err := New(Config{StateDir: dir, Listen: "127.0.0.1:0", RouterID: "h1", CA: ca.Cert, Certifier: cert})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serving runs h until the test ends and waits until its listener answers fabric handshakes.
func serving(t *testing.T, h *Hub, ca *pki.CA) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.Listen = ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	iss, key, err := ca.IssueServer(api.KindRouter, "r1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	creds := fabric.Credentials{Cert: pki.NewCertSlot(rc), CA: ca.Cert}
	deadline := time.Now().Add(5 * time.Second)
	for {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		l, err := fabric.Dial(dctx, h.cfg.Listen, fabric.LinkConfig{Credentials: creds})
		dcancel()
		if err == nil {
			if p := l.Peer(); p.Kind != api.KindHub || p.ID != "h1" {
				t.Fatalf("hub presented %v", p)
			}
			l.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub does not serve the fabric: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartWithoutController: a hub that got its certificate and a snapshot once serves both
// after a restart while the controller is unreachable; the key and snapshot files are 0600.
func TestRestartWithoutController(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &certifier{ca: ca, id: "h1"}
	h := newHub(t, dir, ca, c)
	if h.Node().HasSnapshot() {
		t.Fatal("snapshot before any was received")
	}
	h.Update(control.HubSnapshot{Routers: []control.HubRouter{{ID: "r1"}}}) // admits router r1
	serving(t, h, ca)
	for _, f := range []string{KeyFile, SnapshotFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, fi.Mode().Perm())
		}
	}

	c.fail.Store(true) // the controller is gone
	calls := c.calls.Load()
	again := newHub(t, dir, ca, c)
	if !again.Node().HasSnapshot() {
		t.Fatal("saved snapshot not loaded")
	}
	serving(t, again, ca) // admits r1 from the saved snapshot, with the saved certificate
	if c.calls.Load() != calls {
		t.Fatal("restarted hub asked for a certificate although it had a valid one")
	}
}

// TestRefusals: a certificate for another hub is not installed; a key readable by others and a
// bad listen address are refused with the fix.
func TestRefusals(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := newHub(t, dir, ca, &certifier{ca: ca, id: "someone-else"})
	if err := h.certifyOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "not hub/h1") {
		t.Fatalf("foreign certificate: %v", err)
	}
	if h.valid() {
		t.Fatal("foreign certificate installed")
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{StateDir: dir, Listen: ":80", RouterID: "h1", CA: ca.Cert}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("key readable by others: %v", err)
	}
	if _, err := New(Config{StateDir: t.TempDir(), Listen: "80", RouterID: "h1", CA: ca.Cert}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("bad listen address: %v", err)
	}
}
