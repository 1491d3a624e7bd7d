package controlserver_test

import (
	"context"
	"crypto"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/controller/store/storetest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/pki"
)

func sendHello(t *testing.T, conn *control.Conn) {
	t.Helper()
	if err := conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v2.0.0"}); err != nil {
		t.Fatal(err)
	}
}

// renew sends a renew for key's CSR and returns the answer, skipping other messages.
func renew(t *testing.T, conn *control.Conn, id uint64, key crypto.Signer) control.Renewed {
	t.Helper()
	csr, err := pki.NewCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	conn.Send(control.TypeRenew, id, control.Renew{CSR: string(csr)})
	for {
		env := expect(t, conn, anyType)
		if env.Type == control.TypeRenewed && env.ID == id {
			var rn control.Renewed
			env.Decode(&rn)
			return rn
		}
	}
}

// TestReenrolmentSupersedes runs the real controller's backend: once a router is enrolled
// again (a new registration key used), a certificate of its earlier enrolment loses its open
// session (revoked), is refused a new one (revoked) without kicking the re-enrolled router off,
// and the re-enrolled router renews for its own key only.
func TestReenrolmentSupersedes(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ztna.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctl, err := controller.New(controller.Config{CADir: t.TempDir(), Store: st, Token: "test-token-0123456789",
		Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}}, CertLifetime: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ca := ctl.CA
	r := &api.Router{Name: "edge-1", Roles: []string{"edge"}}
	if err := st.CreateRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	storetest.EnrolRouter(t, st, r.ID, now.Add(-10*time.Minute))
	old := controltest.RouterCertificateIssuedAt(t, ca, r.ID, now.Add(-5*time.Minute), time.Hour)
	c := controltest.StartWith(t, ca, ctl.ControlBackend(), "", controlserver.Config{HeartbeatInterval: time.Second, Logger: log})

	// Before the re-enrolment the old certificate is the router's.
	oldConn, err := c.Dial(t, ca, old)
	if err != nil {
		t.Fatal(err)
	}
	sendHello(t, oldConn)
	expect(t, oldConn, control.TypeWelcome)
	expect(t, oldConn, control.TypeAssignment)

	// The re-enrolment (recorded a minute ago, after the old certificate) revokes its session.
	storetest.EnrolRouter(t, st, r.ID, now.Add(-time.Minute))
	if env := closedWithin(t, oldConn, 5*time.Second); env.Type != control.TypeRevoked || !strings.Contains(string(env.Body), "enrolled again") {
		t.Fatalf("old certificate's session ended with %s %s, want revoked (enrolled again)", env.Type, env.Body)
	}

	cur := controltest.RouterCertificate(t, ca, r.ID, time.Hour)
	newConn, err := c.Dial(t, ca, cur)
	if err != nil {
		t.Fatal(err)
	}
	sendHello(t, newConn)
	expect(t, newConn, control.TypeWelcome)
	expect(t, newConn, control.TypeAssignment)

	// The old certificate gets no new session: no welcome, no assignment, and the re-enrolled
	// router's session stays.
	again, err := c.Dial(t, ca, old)
	if err != nil {
		t.Fatal(err)
	}
	sendHello(t, again)
	if env := expect(t, again, anyType); env.Type != control.TypeRevoked {
		t.Fatalf("old certificate after the re-enrolment got %s %s, want revoked", env.Type, env.Body)
	}
	closedWithin(t, again, 5*time.Second)
	newConn.Send(control.TypeHeartbeat, 0, control.Heartbeat{})
	expect(t, newConn, control.TypeHeartbeatAck)
	if got := c.Server.Connected(); len(got) != 1 || got[0] != r.ID {
		t.Fatalf("connected %v, want the re-enrolled router", got)
	}

	// Renewal: for the session certificate's key only.
	other, _ := pki.GenerateKey()
	if rn := renew(t, newConn, 1, other); rn.Error == "" || !strings.Contains(rn.Error, "key") {
		t.Fatalf("renewal for another key: %+v, want refused", rn)
	}
	rn := renew(t, newConn, 2, cur.PrivateKey.(crypto.Signer))
	leaf, err := pki.ParseCertPEM([]byte(rn.Certificate))
	if err != nil {
		t.Fatalf("renewal for the router's key: %+v: %v", rn, err)
	}
	if !pki.PublicKeysEqual(leaf.PublicKey, cur.Leaf.PublicKey) {
		t.Fatal("renewed certificate is for another key")
	}
}

// TestSupersededRenewal: a session whose certificate an enrolment superseded before the
// change reached it (a lagging feed) is refused renewal, and then revoked.
func TestSupersededRenewal(t *testing.T) {
	b, c := setup(t)
	ca := b.CA
	cert := controltest.RouterCertificate(t, ca, "r1", time.Hour)
	conn, err := c.Dial(t, ca, cert)
	if err != nil {
		t.Fatal(err)
	}
	sendHello(t, conn)
	expect(t, conn, control.TypeWelcome)
	expect(t, conn, control.TypeAssignment)

	b.EnrolQuietly("r1", time.Now().Add(time.Minute))
	csr, err := pki.NewCSR(cert.PrivateKey.(crypto.Signer), "x")
	if err != nil {
		t.Fatal(err)
	}
	conn.Send(control.TypeRenew, 1, control.Renew{CSR: string(csr)})
	// The session's assignment pusher may find the supersession first and close the session
	// before the refusal is written: either way no certificate, and the session ends revoked.
	revoked := false
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		env, err := conn.Receive()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatal("superseded session still open after 5s")
			}
			break
		}
		switch env.Type {
		case control.TypeRenewed:
			var rn control.Renewed
			env.Decode(&rn)
			if rn.Certificate != "" || !strings.Contains(rn.Error, "superseded") {
				t.Fatalf("renewal of a superseded certificate: %+v, want refused as superseded", rn)
			}
		case control.TypeRevoked:
			revoked = true
		}
	}
	if !revoked {
		t.Fatal("superseded session ended without a revocation")
	}
	if n := b.Issued(); n != 0 {
		t.Fatalf("%d certificates issued to a superseded session", n)
	}
}
