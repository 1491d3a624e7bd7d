package embeddedhub_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/embeddedhub"
	"github.com/ztna/ztna/controller/store/storetest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
)

// TestNewRouterAdmittedAtOnce: a router created and enrolled while the hub serves opens its
// first fabric link at once — before any rebuild could list it — and the link is admitted
// and stays, not refused until the next rebuild.
func TestNewRouterAdmittedAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	populate(t, st)
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
	for i := range 3 {
		r := &api.Router{Name: "new-" + string(rune('a'+i)), Roles: []string{"edge"}}
		if err := st.CreateRouter(ctx, r); err != nil {
			t.Fatal(err)
		}
		storetest.EnrolRouter(t, st, r.ID, time.Now())
		cert := controltest.RouterCertificate(t, ca, r.ID, time.Hour)
		start := time.Now()
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		l, err := fabric.Dial(dctx, ln.Addr().String(), fabric.LinkConfig{Credentials: fabric.Credentials{Cert: pki.NewCertSlot(cert), CA: ca.Cert}})
		dcancel()
		linked := time.Since(start)
		if err != nil {
			t.Fatalf("router %d: link refused: %v", i, err)
		}
		t.Cleanup(func() { l.Close() })
		select {
		case <-l.Done():
			t.Fatalf("router %d: link closed after setup: %v", i, l.Err())
		case <-time.After(300 * time.Millisecond):
		}
		t.Logf("router %d linked %v after its enrolment", i, linked.Round(time.Millisecond))
	}
}
