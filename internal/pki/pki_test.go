package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCA(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := LoadOrCreateCA(dir, "test")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreateCA(dir, "test")
	if err != nil || created || again.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("reload: created=%v err=%v fp %s vs %s", created, err, again.Fingerprint(), ca.Fingerprint())
	}
	if !strings.HasPrefix(ca.Fingerprint(), "sha256:") || ValidFingerprint(ca.Fingerprint()) != nil {
		t.Fatalf("bad fingerprint %q", ca.Fingerprint())
	}
	os.Chmod(filepath.Join(dir, CAKeyFile), 0o644)
	if _, _, err := LoadOrCreateCA(dir, "test"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable CA key accepted: %v", err)
	}
}

func TestIssueFromCSR(t *testing.T) {
	ca, _ := NewCA("test")
	key, _ := GenerateKey()
	csrPEM, _ := NewCSR(key, "whatever")
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueFromCSR(csr, "router", "r1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kind, id, err := Identity(iss.Cert)
	if err != nil || kind != "router" || id != "r1" {
		t.Fatalf("identity = %s/%s %v", kind, id, err)
	}
	if d := time.Until(iss.Cert.NotAfter); d > 5*time.Second || d < 3*time.Second {
		t.Fatalf("lifetime not honoured: expires in %v", d)
	}
	if _, err := TLSCertificate(iss.ChainPEM, key); err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKey()
	if _, err := TLSCertificate(iss.ChainPEM, other); err == nil {
		t.Fatal("mismatched key accepted")
	}
	for name, in := range map[string]string{
		"garbage":  "not a csr",
		"tampered": strings.Replace(string(csrPEM), "A", "B", 1),
	} {
		if _, err := ParseCSR([]byte(in)); err == nil {
			t.Errorf("%s CSR accepted", name)
		}
	}
}

// handshake runs a TLS handshake over loopback TCP and returns both sides' errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		s := tls.Server(conn, server)
		err = s.Handshake()
		if err == nil {
			// TLS 1.3 client certificates are checked after the client's handshake returns:
			// exchange a byte so both sides learn the verdict.
			_, err = s.Read(make([]byte, 1))
			if err == nil {
				_, err = s.Write([]byte{1})
			}
		}
		done <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(conn, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		if _, clientErr = c.Write([]byte{1}); clientErr == nil {
			_, clientErr = c.Read(make([]byte, 1))
		}
	}
	conn.Close()
	return <-done, clientErr
}

func serverSlot(t *testing.T, ca *CA, kind string) *CertSlot {
	iss, key, err := ca.IssueServer(kind, "c1", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := TLSCertificate(iss.ChainPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	return NewCertSlot(c)
}

func TestPinnedClient(t *testing.T) {
	ca, _ := NewCA("a")
	otherCA, _ := NewCA("b")
	good := ServerConfig(serverSlot(t, ca, "controller"))

	pinned, err := PinnedClientConfig(ca.Fingerprint(), "controller")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, good, pinned); err != nil {
		t.Fatalf("pinned handshake failed: %v", err)
	}

	wrongPin, _ := PinnedClientConfig(otherCA.Fingerprint(), "controller")
	_, err = handshake(t, good, wrongPin)
	var pm *PinMismatchError
	if !errors.As(err, &pm) || !strings.Contains(err.Error(), "TLS interception or wrong controller") {
		t.Fatalf("wrong pin: err = %v", err)
	}

	// A certificate from the right CA but for a router must not pass as the controller.
	asRouter := ServerConfig(serverSlot(t, ca, "router"))
	_, err = handshake(t, asRouter, pinned)
	var pk *PeerKindError
	if !errors.As(err, &pk) {
		t.Fatalf("router posing as controller: err = %v", err)
	}
	if _, err := PinnedClientConfig("sha256:xyz"); err == nil {
		t.Fatal("bad fingerprint accepted")
	}
}

func TestMutualTLS(t *testing.T) {
	ca, _ := NewCA("a")
	otherCA, _ := NewCA("b")
	clientSlot := func(c *CA, kind, id string) *CertSlot {
		key, _ := GenerateKey()
		csrPEM, _ := NewCSR(key, id)
		csr, _ := ParseCSR(csrPEM)
		iss, err := c.IssueFromCSR(csr, kind, id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tc, _ := TLSCertificate(iss.ChainPEM, key)
		return NewCertSlot(tc)
	}
	deleted := errors.New("router r2 was deleted")
	authz := func(kind, id string) error {
		if id == "r2" {
			return deleted
		}
		return nil
	}
	server := MutualServerConfig(serverSlot(t, ca, "controller"), ca.Cert, authz, "router")
	for _, tc := range []struct {
		name   string
		client *CertSlot
		ok     bool
	}{
		{"router", clientSlot(ca, "router", "r1"), true},
		{"deleted router", clientSlot(ca, "router", "r2"), false},
		{"identity", clientSlot(ca, "identity", "i1"), false},
		{"other CA", clientSlot(otherCA, "router", "r1"), false},
		{"no certificate", NewCertSlot(nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serr, cerr := handshake(t, server, MutualClientConfig(tc.client, ca.Cert, "controller"))
			if ok := serr == nil && cerr == nil; ok != tc.ok {
				t.Fatalf("server err %v, client err %v; want ok=%v", serr, cerr, tc.ok)
			}
		})
	}
	// The client refuses a server from another CA.
	otherServer := MutualServerConfig(serverSlot(t, otherCA, "controller"), otherCA.Cert, nil, "router")
	if _, cerr := handshake(t, otherServer, MutualClientConfig(clientSlot(ca, "router", "r1"), ca.Cert, "controller")); cerr == nil {
		t.Fatal("client accepted a server from another CA")
	}
}
