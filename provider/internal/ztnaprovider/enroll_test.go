package ztnaprovider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// enrollRouter consumes a registration key the way a router does on its first boot: a key
// pair generated here, a CSR, and POST /v1/enroll over the pinned connection.
func enrollRouter(t *testing.T, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(priv, "router")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apiClient(t).Enroll(context.Background(), api.EnrollRequest{Key: key, CSR: string(csr)})
	if err != nil {
		t.Fatalf("enrol with the registration key: %v", err)
	}
	if resp.Config.Kind != api.KindRouter || resp.Certificate == "" {
		t.Fatalf("enrolment returned %+v", resp.Config)
	}
}
