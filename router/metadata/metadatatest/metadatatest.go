// Package metadatatest runs fakes of the cloud instance metadata services on loopback for tests,
// speaking each service's real wire format: EC2 IMDSv2 (session token), the GCE metadata server
// (Metadata-Flavor: Google) and Azure IMDS (Metadata: true, api-version, base64 user data). The
// places they report are fixed: AWS region eu-west-1 zone eu-west-1b, GCP zone europe-west1-b,
// Azure location westeurope zone 2.
package metadatatest

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t testing.TB, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// AWS speaks EC2's IMDSv2: a PUT for a session token (TTL header required), then GETs
// that must carry the token; token-less (IMDSv1) requests are refused as on hardened instances.
func AWS(t testing.TB, userData string) *httptest.Server {
	const token = "AQAEAFakeToken=="
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/api/token" {
			if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "", http.StatusBadRequest)
				return
			}
			w.Write([]byte(token))
			return
		}
		if r.Header.Get("X-aws-ec2-metadata-token") != token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/latest/user-data":
			if userData == "" {
				http.NotFound(w, r)
				return
			}
			w.Write([]byte(userData))
		case "/latest/meta-data/placement/availability-zone":
			w.Write([]byte("eu-west-1b"))
		case "/latest/meta-data/placement/region":
			w.Write([]byte("eu-west-1"))
		default:
			http.NotFound(w, r)
		}
	})
}

// GCP speaks the GCE metadata server: Metadata-Flavor: Google both ways.
func GCP(t testing.TB, attrs map[string]string) *httptest.Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
			return
		}
		p := strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/")
		if v, ok := strings.CutPrefix(p, "instance/attributes/"); ok {
			if val, found := attrs[v]; found {
				w.Write([]byte(val))
				return
			}
		}
		if p == "instance/zone" {
			w.Write([]byte("projects/123456789/zones/europe-west1-b"))
			return
		}
		http.NotFound(w, r)
	})
}

// Azure speaks Azure IMDS: Metadata: true required, api-version required, no proxying,
// userData returned base64-encoded with format=text.
func Azure(t testing.TB, userData string) *httptest.Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Header.Get("Metadata") != "true" || r.Header.Get("X-Forwarded-For") != "" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"Bad request. Required metadata header not specified"}`))
			return
		}
		if r.URL.Query().Get("api-version") == "" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"Bad request. api-version was not specified in the request"}`))
			return
		}
		switch r.URL.Path {
		case "/metadata/instance/compute/userData":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(base64.StdEncoding.EncodeToString([]byte(userData))))
		case "/metadata/instance/compute":
			w.Write([]byte(`{"location":"westeurope","zone":"2","vmSize":"Standard_B2s","name":"r1"}`))
		default:
			http.NotFound(w, r)
		}
	})
}
