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

	"github.com/ztna/ztna/controller/controlserver"
	"github.com/ztna/ztna/controller/edgeapi"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
)

func signedAttestation(t *testing.T, priv ed25519.PrivateKey, a control.Attestation) *control.Attestation {
	t.Helper()
	msg, err := a.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = &control.AttestationSignature{KeyID: control.AttestationKeyID(priv.Public().(ed25519.PublicKey)), Ed25519: ed25519.Sign(priv, msg)}
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
		AttestationKeys: control.TrustedKeys{control.AttestationKeyID(pub): pub}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b := c.ControlBackend()

	image := control.Attestation{RouterVersion: "1.3.0-rc1", HardeningProfile: "ztna-v2", BuildTime: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), BaseImage: "debian-12"}
	tampered := signedAttestation(t, buildKey, image)
	tampered.HardeningProfile = "none"
	forged := signedAttestation(t, otherKey, image)
	forged.Signature.KeyID = control.AttestationKeyID(pub)
	hellos := map[control.AttestationStatus]float64{}
	for _, tt := range []struct {
		name   string
		image  *control.Attestation
		reason control.AttestationStatus
	}{
		{"signed", signedAttestation(t, buildKey, image), control.AttestationVerified},
		{"unsigned", &image, control.AttestationUnsigned},
		{"tampered", tampered, control.AttestationBadSignature},
		{"forged", forged, control.AttestationBadSignature},
		{"other-key", signedAttestation(t, otherKey, image), control.AttestationUntrustedKey},
		{"no-image", nil, control.AttestationMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &api.Router{Name: tt.name}
			if err := c.Store.CreateRouter(ctx, r); err != nil {
				t.Fatal(err)
			}
			// The hello travels as JSON.
			raw, _ := json.Marshal(control.Hello{Version: "1.3.0-rc1", Image: tt.image})
			var hello control.Hello
			json.Unmarshal(raw, &hello)
			if err := b.RecordStatus(ctx, []controlserver.Status{{RouterID: r.ID, Online: true, At: time.Now(), Hello: &hello}}); err != nil {
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
			if got.AttestationVerified != (tt.reason == control.AttestationVerified) || got.AttestationReason != string(tt.reason) {
				t.Errorf("attestation_verified %v, attestation_reason %q; want %q", got.AttestationVerified, got.AttestationReason, tt.reason)
			}
			hellos[tt.reason]++
			if n := testutil.ToFloat64(c.attestations.WithLabelValues(string(tt.reason))); n != hellos[tt.reason] {
				t.Errorf("ztna_controller_router_attestations_total{result=%q} = %v, want %v", tt.reason, n, hellos[tt.reason])
			}
		})
	}
}
