package edgeapi_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/logging"
)

const testToken = "test-token-0123456789abcdef"

// env is one in-process controller (edge plane only) on a loopback port.
type env struct {
	c      *controller.Controller
	url    string
	client *apiclient.Client
	logs   *logging.Buffer
}

func start(t *testing.T) *env { t.Helper(); return startAdvertising(t, "") }

// startAdvertising starts the controller with edge, when not empty, as the edge endpoint that
// keys carry (a proxy in front of it).
func startAdvertising(t *testing.T, edge string) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, st, edge)
}

// startWith runs the controller on st, which it closes at cleanup.
func startWith(t *testing.T, st store.Store) *env { t.Helper(); return startOn(t, st, "") }

// startOn runs the controller on st advertising edge (when not empty) as its edge endpoint.
func startOn(t *testing.T, st store.Store, edge string) *env {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logging.Buffer{}
	addr := freeAddr(t)
	advertised := "https://" + addr
	if edge != "" {
		advertised = "https://" + edge
	}
	c, err := controller.New(controller.Config{
		CADir: dir, Store: st, Token: testToken,
		Listen:    map[controller.Plane]string{controller.PlaneEdge: addr},
		Advertise: edgeapi.Endpoints{Edge: []string{advertised}, Control: []string{"127.0.0.1:1"}, Fabric: []string{"127.0.0.1:2"}},
		Hosts:     []string{"127.0.0.1"}, CertLifetime: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var client *apiclient.Client
	t.Cleanup(func() {
		if client != nil {
			client.CloseIdleConnections()
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
		st.Close()
	})
	if c.Addr(controller.PlaneEdge) == nil {
		t.Fatalf("edge plane did not listen: %v", <-done)
	}
	url := "https://" + addr
	client, err = apiclient.New(url, testToken, c.CA.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: c, url: url, client: client, logs: logs}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
