package embeddedhub_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/embeddedhub"
	"github.com/ztna/ztna/controller/store/storetest"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// TestEmbeddedRefusesSupersededRouter: once a router is enrolled again, the embedded hub cuts
// the link of its earlier enrolment's certificate and refuses that certificate new links,
// while the new enrolment's certificate links and stays.
func TestEmbeddedRefusesSupersededRouter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	r := populate(t, st)
	now := time.Now()
	storetest.EnrolRouter(t, st, r.ID, now.Add(-10*time.Minute))

	ca, hubCert := hubCertificate(t)
	e := embeddedhub.New(embeddedhub.Config{Store: st, Cert: pki.NewCertSlot(hubCert), CA: ca.Cert})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ctx, ln)
	for !e.Node().HasSnapshot() {
		time.Sleep(5 * time.Millisecond)
	}
	link := func(cert *tls.Certificate) *fabric.Link {
		t.Helper()
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		l, err := fabric.Dial(dctx, ln.Addr().String(), fabric.LinkConfig{Credentials: fabric.Credentials{Cert: pki.NewCertSlot(cert), CA: ca.Cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	// A link that survives this long was admitted: refusals close it at once.
	const admitted = 300 * time.Millisecond
	closedWithin := func(l *fabric.Link, d time.Duration) bool {
		select {
		case <-l.Done():
			return true
		case <-time.After(d):
			return false
		}
	}

	old := controltest.RouterCertificateIssuedAt(t, ca, r.ID, now.Add(-5*time.Minute), time.Hour)
	oldLink := link(old)
	if closedWithin(oldLink, admitted) {
		t.Fatalf("the certificate of the router's only enrolment was refused: %v", oldLink.Err())
	}

	storetest.EnrolRouter(t, st, r.ID, now.Add(-time.Minute))
	if !closedWithin(oldLink, 5*time.Second) {
		t.Fatal("the superseded certificate's link stayed up after the router was enrolled again")
	}
	if again := link(old); !closedWithin(again, 5*time.Second) {
		t.Fatal("the superseded certificate linked again")
	}
	cur := link(controltest.RouterCertificate(t, ca, r.ID, time.Hour))
	if closedWithin(cur, admitted) {
		t.Fatalf("the new enrolment's certificate was refused: %v", cur.Err())
	}
}
