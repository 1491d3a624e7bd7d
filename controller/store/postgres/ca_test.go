package postgres

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// Replicas starting together on an empty database end up with one CA, and each accepts the
// certificates the other issues.
func TestSharedCA(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	stores := []*Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	cas := make([]*pki.CA, len(stores))
	created := make([]bool, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			cas[i], created[i], err = s.LoadOrCreateCA(context.Background(), secret, "ztna network CA")
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	n := 0
	for i, ca := range cas {
		if created[i] {
			n++
		}
		if ca.Fingerprint() != cas[0].Fingerprint() {
			t.Fatalf("replica %d has CA %s, replica 0 %s", i, ca.Fingerprint(), cas[0].Fingerprint())
		}
	}
	if n != 1 {
		t.Fatalf("%d replicas report creating the CA, want 1", n)
	}

	// Replica 0 issues a router certificate; replica 1 verifies it, and the other way round
	// for its own server certificate.
	key, _ := pki.GenerateKey()
	csrPEM, _ := pki.NewCSR(key, "r")
	csr, err := pki.ParseCSR(csrPEM)
	must(t, err)
	routerCert, err := cas[0].IssueFromCSR(csr, api.KindRouter, "r1", time.Hour)
	must(t, err)
	serverCert, _, err := cas[1].IssueServer(api.KindController, "replica-1", []string{"127.0.0.1"}, time.Hour)
	must(t, err)
	for what, c := range map[string]struct {
		cert *x509.Certificate
		by   *pki.CA
	}{"router cert of replica 0 at replica 1": {routerCert.Cert, cas[1]}, "server cert of replica 1 at replica 2": {serverCert.Cert, cas[2]}} {
		if _, err := c.cert.Verify(x509.VerifyOptions{Roots: c.by.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	// A restart finds it again.
	again, made, err := open(t, dsn).LoadOrCreateCA(context.Background(), secret, "ignored")
	must(t, err)
	if made || again.Fingerprint() != cas[0].Fingerprint() {
		t.Fatalf("after restart: created=%v fingerprint %s", made, again.Fingerprint())
	}
}

func TestCASecret(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn)
	ca, _, err := s.LoadOrCreateCA(ctx, secret, "ztna network CA")
	must(t, err)

	t.Run("key sealed at rest", func(t *testing.T) {
		keyPEM, _ := ca.KeyPEM()
		var certPEM string
		var sealed []byte
		must(t, s.pool.QueryRow(ctx, `SELECT cert_pem, key_sealed FROM network_ca`).Scan(&certPEM, &sealed))
		for _, needle := range [][]byte{keyPEM, []byte("PRIVATE KEY"), pemBody(t, keyPEM)} {
			if bytes.Contains(sealed, needle) || bytes.Contains([]byte(certPEM), needle) {
				t.Fatalf("the database holds the CA key in the clear")
			}
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		other := bytes.Repeat([]byte("x"), 40)
		if _, _, err := s.LoadOrCreateCA(ctx, other, "ztna network CA"); !errors.Is(err, ErrCASecret) {
			t.Fatalf("another secret: %v, want ErrCASecret", err)
		}
	})
	t.Run("short secret", func(t *testing.T) {
		if _, _, err := s.LoadOrCreateCA(ctx, []byte("short"), "ztna network CA"); err == nil {
			t.Fatal("a 5-byte secret was accepted")
		}
	})
	t.Run("swapped certificate", func(t *testing.T) {
		// Someone with write access to the database puts in their own CA certificate: the
		// sealed key no longer opens, so no replica signs with a key it did not seal.
		evil, _ := pki.NewCA("evil")
		if _, err := s.pool.Exec(ctx, `UPDATE network_ca SET cert_pem = $1`, string(evil.CertPEM)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.LoadOrCreateCA(ctx, secret, "ztna network CA"); !errors.Is(err, ErrCASecret) {
			t.Fatalf("swapped certificate: %v, want ErrCASecret", err)
		}
	})
}

// pemBody returns the DER inside a PEM block, the part that must not appear either.
func pemBody(t *testing.T, p []byte) []byte {
	t.Helper()
	key, err := pki.ParseKeyPEM(p)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	return der
}
