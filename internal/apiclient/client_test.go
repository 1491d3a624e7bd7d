package apiclient

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// server starts an HTTPS server whose certificate (kind) is issued by a fresh CA; it
// returns its base URL.
func server(t *testing.T, kind string, h http.HandlerFunc) (string, *pki.CA) {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	iss, key, err := ca.IssueServer(kind, "c", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	// Not StartTLS: it would put its own certificate first.
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = tls.NewListener(srv.Listener, pki.ServerConfig(pki.NewCertSlot(cert)))
	srv.Start()
	t.Cleanup(srv.Close)
	return "https://" + srv.Listener.Addr().String(), ca
}

func TestErrorsAndHeaders(t *testing.T) {
	srv, ca := server(t, api.KindController, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("User-Agent") != "test-agent/1" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		switch r.URL.Path {
		case "/v1/routers/missing":
			w.Header().Set("Content-Type", api.ProblemContentType)
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"type":"urn:ztna:problem:not-found","title":"Not found","status":404,"detail":"router \"missing\": not found"}`))
		case "/v1/routers":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>proxy error</html>"))
		case "/v1/services/x":
			w.Write([]byte(`{"id":"x","name":"db","port":5432}`))
		}
	})
	c, err := New(srv, "tok", ca.Fingerprint(), WithUserAgent("test-agent/1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.GetRouter(ctx, "missing")
	if !IsNotFound(err) || IsConflict(err) || ProblemType(err) != api.ProblemNotFound || !strings.Contains(err.Error(), `router "missing"`) {
		t.Fatalf("404 problem: %v", err)
	}
	_, err = c.ListRouters(ctx)
	var e *Error
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "proxy error") {
		t.Fatalf("non-problem error body: %v (%T %v)", err, err, e)
	}
	svc, err := c.GetService(ctx, "x")
	if err != nil || svc.Port != 5432 {
		t.Fatalf("decode: %+v %v", svc, err)
	}
}

func TestPinning(t *testing.T) {
	srv, _ := server(t, api.KindController, func(w http.ResponseWriter, r *http.Request) {})
	other, _ := pki.NewCA("other")
	c, _ := New(srv, "tok", other.Fingerprint())
	_, err := c.ListRouters(context.Background())
	if !IsPinMismatch(err) || !strings.Contains(err.Error(), "TLS interception or wrong controller") {
		t.Fatalf("wrong pin: %v", err)
	}
	// A server certificate of the right CA but the wrong kind is no controller.
	hub, hubCA := server(t, api.KindRouter, func(w http.ResponseWriter, r *http.Request) {})
	c, _ = New(hub, "tok", hubCA.Fingerprint())
	if _, err := c.ListRouters(context.Background()); err == nil || !strings.Contains(err.Error(), "router/c") {
		t.Fatalf("router certificate accepted as controller: %v", err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	fp := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ url, fp string }{
		{"http://controller", fp},
		{"controller:443", fp},
		{"https://controller", "sha1:abc"},
		{"https://controller", ""},
	} {
		if _, err := New(tc.url, "t", tc.fp); err == nil {
			t.Errorf("New(%q, %q) accepted", tc.url, tc.fp)
		}
	}
}
