// Package teststate writes the state directory of an enrolled router for tests, as
// internal/enroll would after a successful enrolment, using a real CA.
package teststate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// Router is an enrolled router's state written to Dir.
type Router struct {
	Dir string
	CA  *pki.CA
	Cfg api.EnrolledConfig
}

// Write creates a state directory for router id, enrolled with ca, whose certificate lives for
// lifetime, pointing at the given control endpoints.
func Write(t testing.TB, ca *pki.CA, id string, lifetime time.Duration, control ...string) *Router {
	t.Helper()
	dir := t.TempDir()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueFromCSR(csr, api.KindRouter, id, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.EnrolledConfig{ID: id, Kind: api.KindRouter, Name: "r-" + id, Roles: []string{"edge"},
		Control: control, CAFingerprint: ca.Fingerprint(), CertExpiresAt: iss.Cert.NotAfter}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]struct {
		data []byte
		perm os.FileMode
	}{
		"key.pem":     {keyPEM, 0o600},
		"cert.pem":    {iss.ChainPEM, 0o644},
		"ca.pem":      {ca.CertPEM, 0o644},
		"config.json": {raw, 0o644},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), f.data, f.perm); err != nil {
			t.Fatal(err)
		}
	}
	return &Router{Dir: dir, CA: ca, Cfg: cfg}
}

// NewCA creates a CA or fails the test.
func NewCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test network")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
