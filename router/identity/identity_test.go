package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/internal/teststate"
)

func TestLoadRefusesBrokenState(t *testing.T) {
	ca := teststate.NewCA(t)
	tests := []struct {
		name    string
		breakIt func(dir string)
		want    string
	}{
		{"not enrolled", func(dir string) { os.Remove(filepath.Join(dir, ConfigFile)) }, "run `ztna-router enroll"},
		{"key readable by others", func(dir string) { os.Chmod(filepath.Join(dir, KeyFile), 0o644) }, "chmod 600"},
		{"CA swapped", func(dir string) {
			other := teststate.NewCA(t)
			os.WriteFile(filepath.Join(dir, CAFile), other.CertPEM, 0o644)
		}, "tampered with"},
		{"certificate of another router", func(dir string) {
			other := teststate.Write(t, ca, "r2", time.Hour, "127.0.0.1:1")
			b, _ := os.ReadFile(filepath.Join(other.Dir, CertFile))
			os.WriteFile(filepath.Join(dir, CertFile), b, 0o644)
		}, "does not match"},
		{"garbage config", func(dir string) { os.WriteFile(filepath.Join(dir, ConfigFile), []byte("{"), 0o644) }, "config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := teststate.Write(t, ca, "r1", time.Hour, "127.0.0.1:1")
			tt.breakIt(st.Dir)
			_, err := Load(st.Dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
	st := teststate.Write(t, ca, "r1", time.Hour, "127.0.0.1:1")
	os.Remove(filepath.Join(st.Dir, ConfigFile))
	if _, err := Load(st.Dir); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("err = %v, want ErrNotEnrolled", err)
	}
}

func TestInstallRenewedCertificate(t *testing.T) {
	ca := teststate.NewCA(t)
	st := teststate.Write(t, ca, "r1", 30*time.Second, "127.0.0.1:1")
	id, err := Load(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(id.RenewAt()); d < 15*time.Second || d > 21*time.Second {
		t.Fatalf("renewal due in %v, want about 20s (two thirds of 30s)", d)
	}
	issue := func(c *pki.CA, rid string) []byte {
		csrPEM, err := id.CSR()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := pki.ParseCSR(csrPEM)
		if err != nil {
			t.Fatal(err)
		}
		iss, err := c.IssueFromCSR(csr, api.KindRouter, rid, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return iss.ChainPEM
	}
	old := id.Leaf()
	for name, chain := range map[string][]byte{
		"from another CA":    issue(teststate.NewCA(t), "r1"),
		"for another router": issue(ca, "r2"),
		"garbage":            []byte("nope"),
	} {
		if err := id.Install(chain); err == nil {
			t.Errorf("%s: Install accepted it", name)
		}
	}
	if id.Leaf() != old {
		t.Fatal("a refused certificate replaced the current one")
	}

	if err := id.Install(issue(ca, "r1")); err != nil {
		t.Fatal(err)
	}
	if id.Leaf().SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("certificate not switched")
	}
	if d := time.Until(id.RenewAt()); d < 39*time.Minute {
		t.Fatalf("renewal of a 1h certificate due in %v", d)
	}
	reloaded, err := Load(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if reloaded.Leaf().SerialNumber.Cmp(id.Leaf().SerialNumber) != 0 {
		t.Fatal("renewed certificate not persisted")
	}
	if !reloaded.Config.CertExpiresAt.Equal(id.Leaf().NotAfter.UTC()) {
		t.Fatalf("config.json cert_expires_at = %v, want %v", reloaded.Config.CertExpiresAt, id.Leaf().NotAfter)
	}
}
