package controlserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/controlserver/controltest"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

// BenchmarkServiceChangeFanOut measures how long one service update takes to reach every router
// holding its role, over the real controller backend (SQLite, role index): 1,000 routers in 10
// roles, 1,000 services spread over the roles; each iteration updates a service of role 0 and
// waits until its 100 routers have the new assignment. ns/op is the time to reach them all;
// pushes/op counts assignments sent (100 when only the role's routers are woken).
func BenchmarkServiceChangeFanOut(b *testing.B) {
	const routers, services, roles = 1000, 1000, 10
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "ztna.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctl, err := controller.New(controller.Config{CADir: b.TempDir(), Store: st, Token: "test-token-0123456789",
		Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}}, CertLifetime: time.Hour, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	var target *api.Service
	for i := range services {
		s := &api.Service{Name: fmt.Sprintf("svc-%04d", i), Address: fmt.Sprintf("host-%04d.customer.test", i), Port: 5432,
			Protocol: api.ProtocolTCP, RouterRoles: []string{fmt.Sprintf("role-%d", i%roles)}}
		if err := st.CreateService(ctx, s); err != nil {
			b.Fatal(err)
		}
		if target == nil {
			target = s
		}
	}
	c := controltest.StartWith(b, ctl.CA, ctl.ControlBackend(), "", controlserver.Config{HeartbeatInterval: time.Minute, Logger: log})

	// got[i] receives every assignment of a role-0 router after its first.
	var got []chan int
	var wg sync.WaitGroup
	for i := range routers {
		r := &api.Router{Name: fmt.Sprintf("r-%04d", i), Roles: []string{fmt.Sprintf("role-%d", i%roles)}}
		if err := st.CreateRouter(ctx, r); err != nil {
			b.Fatal(err)
		}
		conn, err := c.Dial(b, ctl.CA, controltest.RouterCertificate(b, ctl.CA, r.ID, time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		conn.Send(control.TypeHello, 0, control.Hello{Protocol: control.ProtocolVersion, Version: "v1"})
		var ch chan int
		if i%roles == 0 {
			ch = make(chan int, 16)
			got = append(got, ch)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				env, err := conn.Receive()
				if err != nil {
					return
				}
				if env.Type == control.TypeAssignment {
					if first {
						first = false
						continue
					}
					if ch != nil {
						ch <- len(env.Body)
					}
				}
			}
		}()
	}
	for len(c.Server.Connected()) < routers {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // the routers' creations have reached the sessions
	before, _ := c.Server.Pushes()
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.UpdateService(ctx, target.ID, func(s *api.Service) error { s.Port = 6000 + i%1000; return nil }); err != nil {
			b.Fatal(err)
		}
		for _, ch := range got {
			<-ch
		}
	}
	b.StopTimer()
	after, _ := c.Server.Pushes()
	b.ReportMetric(float64(after-before)/float64(b.N), "pushes/op")
}
