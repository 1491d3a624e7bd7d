package controller

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	wire "github.com/ztna/ztna/internal/control"
)

func signedAttestation(t *testing.T, priv ed25519.PrivateKey, a wire.Attestation) *wire.Attestation {
	t.Helper()
	msg, err := a.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = &wire.AttestationSignature{KeyID: wire.AttestationKeyID(priv.Public().(ed25519.PublicKey)), Ed25519: ed25519.Sign(priv, msg)}
	return &a
}

// Routers report their image attestation in the hello; the controller checks it against its
// trusted build keys and says per router (API) and in total (metric) which ones verified.
func TestAttestationVerification(t *testing.T) {
	ctx := context.Background()
	pub, buildKey, _ := ed25519.GenerateKey(rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "z.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const token = "0123456789abcdef0123"
	c, err := New(Config{CADir: dir, Store: st, Token: token, Advertise: edgeapi.Endpoints{Edge: []string{"https://127.0.0.1:1"}},
		AttestationKeys: wire.TrustedKeys{wire.AttestationKeyID(pub): pub}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b := c.ControlBackend()

	image := wire.Attestation{RouterVersion: "1.3.0-rc1", HardeningProfile: "ztna-v2", BuildTime: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), BaseImage: "debian-12"}
	tampered := signedAttestation(t, buildKey, image)
	tampered.HardeningProfile = "none"
	forged := signedAttestation(t, otherKey, image)
	forged.Signature.KeyID = wire.AttestationKeyID(pub)
	hellos := map[wire.AttestationStatus]float64{}
	for _, tt := range []struct {
		name   string
		image  *wire.Attestation
		reason wire.AttestationStatus
	}{
		{"signed", signedAttestation(t, buildKey, image), wire.AttestationVerified},
		{"unsigned", &image, wire.AttestationUnsigned},
		{"tampered", tampered, wire.AttestationBadSignature},
		{"forged", forged, wire.AttestationBadSignature},
		{"other-key", signedAttestation(t, otherKey, image), wire.AttestationUntrustedKey},
		{"no-image", nil, wire.AttestationMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &api.Router{Name: tt.name}
			if err := c.Store.CreateRouter(ctx, r); err != nil {
				t.Fatal(err)
			}
			// The hello travels as JSON.
			raw, _ := json.Marshal(wire.Hello{Version: "1.3.0-rc1", Image: tt.image})
			var hello wire.Hello
			json.Unmarshal(raw, &hello)
			if err := b.RouterOnline(ctx, r.ID, hello, time.Now()); err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/v1/routers/"+r.ID, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			c.Edge.ServeHTTP(rec, req)
			var got api.Router
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
				t.Fatalf("GET router: %d %s", rec.Code, rec.Body)
			}
			if got.AttestationVerified != (tt.reason == wire.AttestationVerified) || got.AttestationReason != string(tt.reason) {
				t.Errorf("attestation_verified %v, attestation_reason %q; want %q", got.AttestationVerified, got.AttestationReason, tt.reason)
			}
			hellos[tt.reason]++
			if n := testutil.ToFloat64(c.attestations.WithLabelValues(string(tt.reason))); n != hellos[tt.reason] {
				t.Errorf("ztna_controller_router_attestations_total{result=%q} = %v, want %v", tt.reason, n, hellos[tt.reason])
			}
		})
	}
}
