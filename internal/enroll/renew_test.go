package enroll

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
)

// identityFile issues a certificate of identity id living lifetime and returns the identity
// file holding it.
func identityFile(t *testing.T, ca *pki.CA, id string, lifetime time.Duration) *IdentityFile {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, _ := pki.NewCSR(key, id)
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueFromCSR(csr, api.KindIdentity, id, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(key)
	return &IdentityFile{
		Config: api.EnrolledConfig{ID: id, Kind: api.KindIdentity, Name: "app-" + id, Fabric: []string{"127.0.0.1:1"},
			CAFingerprint: ca.Fingerprint(), CertExpiresAt: iss.Cert.NotAfter},
		Key: string(keyPEM), Cert: string(iss.ChainPEM), CA: string(ca.CertPEM),
	}
}

func TestReplaceIdentity(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	renewed := identityFile(t, ca, "i1", 2*time.Hour)
	for _, tc := range []struct {
		name    string
		onDisk  *IdentityFile // nil: no file
		symlink bool
		written bool
	}{
		{"same identity, older certificate", identityFile(t, ca, "i1", time.Hour), false, true},
		{"through a symbolic link", identityFile(t, ca, "i1", time.Hour), true, true},
		{"enrolled again as another identity", identityFile(t, ca, "i2", time.Hour), false, false},
		{"renewed meanwhile by another program", identityFile(t, ca, "i1", 3*time.Hour), false, false},
		{"removed", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.identity")
			target := path
			if tc.symlink {
				target = filepath.Join(dir, "real.identity")
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			}
			if tc.onDisk != nil {
				if err := tc.onDisk.Write(target); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(target)
			err := ReplaceIdentity(path, renewed)
			after, _ := os.ReadFile(target)
			if !tc.written {
				if !errors.Is(err, ErrFileChanged) || !bytes.Equal(before, after) {
					t.Fatalf("err = %v, file changed: %v; want it left alone with ErrFileChanged", err, !bytes.Equal(before, after))
				}
				if tc.onDisk == nil {
					if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
						t.Fatal("a removed identity file was created again")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := LoadIdentity(path)
			if err != nil || got.Cert != renewed.Cert || got.Key != renewed.Key {
				t.Fatalf("file does not hold the renewed identity: %v", err)
			}
			if fi, err := os.Lstat(path); err != nil || (fi.Mode()&os.ModeSymlink != 0) != tc.symlink {
				t.Fatalf("the symbolic link was replaced: %v %v", fi.Mode(), err)
			}
			if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v %v, want 0600", fi.Mode(), err)
			}
		})
	}
}

// TestIdentityFileKeepsItsKeyOutOfLogs: logging or printing an identity file shows who it is,
// never its private key.
func TestIdentityFileKeepsItsKeyOutOfLogs(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	f := identityFile(t, ca, "i1", time.Hour)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "identity", f, "value", *f)
	fmt.Fprintf(&buf, "%v %+v %s", f, *f, f)
	keyBody := strings.Split(f.Key, "\n")[1]
	if strings.Contains(buf.String(), keyBody) || strings.Contains(buf.String(), "PRIVATE KEY") {
		t.Fatalf("the key leaked:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "i1") {
		t.Fatalf("the identity is not named:\n%s", buf.String())
	}
}
