package ztnarouter

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/testenv"
	"github.com/ztna/ztna/packer/internal/spectest"
	"github.com/ztna/ztna/packer/nftest"
)

func fakeRouter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ztna-router")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestConfigSpecCoversConfig(t *testing.T) {
	var p Provisioner
	spectest.AssertCoversConfig(t, p.ConfigSpec(), &p.config)
}

func TestPrepareFromHCL(t *testing.T) {
	bin := fakeRouter(t)
	var p Provisioner
	v := spectest.Decode(t, p.ConfigSpec(), fmt.Sprintf(`
router_binary  = %q
router_version = "v1.2.3"
cloud          = "aws"
ssh_lockdown   = false
ssh_allow_from = ["203.0.113.0/24", "2001:db8::/32"]
use_sudo       = true
`, bin))
	if err := p.Prepare(v); err != nil {
		t.Fatal(err)
	}
	c := p.config
	if c.RouterBinary != bin || c.RouterVersion != "v1.2.3" || c.Cloud != "aws" || !c.UseSudo {
		t.Errorf("decoded %+v", c)
	}
	if c.MetadataSource != "aws" || c.Arch != "amd64" {
		t.Errorf("defaults: metadata_source=%q arch=%q, want aws and amd64", c.MetadataSource, c.Arch)
	}
	if !c.SSHLockdown.False() || len(p.sshFrom) != 2 {
		t.Errorf("ssh_lockdown=%v ssh_allow_from=%v", c.SSHLockdown, p.sshFrom)
	}
}

func TestPrepareDefaults(t *testing.T) {
	var p Provisioner
	err := p.Prepare(map[string]interface{}{"router_binary": fakeRouter(t), "router_version": "1.0.0", "cloud": "local"})
	if err != nil {
		t.Fatal(err)
	}
	if p.config.MetadataSource != "file" {
		t.Errorf("metadata_source for local = %q, want file", p.config.MetadataSource)
	}
	if p.config.SSHLockdown.False() {
		t.Error("ssh_lockdown must default to on")
	}
	if p.config.NTPServers != nil {
		t.Errorf("ntp_servers for local = %q, want Debian's pool (none set)", p.config.NTPServers)
	}
}

// Each cloud's own time service is the default NTP server; set servers replace it.
func TestNTPServers(t *testing.T) {
	for _, tt := range []struct {
		cloud string
		set   []string
		want  string
	}{
		{"aws", nil, "NTP=169.254.169.123\n"},
		{"gcp", nil, "NTP=metadata.google.internal\n"},
		{"azure", nil, "# No ntp_servers"},
		{"aws", []string{"ntp1.example.com", "192.0.2.123"}, "NTP=ntp1.example.com 192.0.2.123\n"},
	} {
		var p Provisioner
		raw := map[string]interface{}{"router_binary": fakeRouter(t), "router_version": "1.0.0", "cloud": tt.cloud}
		if tt.set != nil {
			raw["ntp_servers"] = tt.set
		}
		if err := p.Prepare(raw); err != nil {
			t.Fatal(err)
		}
		if got := string(timesyncdConf(p.config.NTPServers)); !strings.Contains(got, tt.want) {
			t.Errorf("%s %v: timesyncd.conf lacks %q:\n%s", tt.cloud, tt.set, tt.want, got)
		}
	}
}

func TestPrepareRejects(t *testing.T) {
	bin := fakeRouter(t)
	tests := []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{"nothing", map[string]interface{}{},
			[]string{"router_binary or router_deb: one is required", `router_version: required`, `cloud "": must be one of aws, gcp, azure, local`}},
		{"both sources", map[string]interface{}{"router_binary": bin, "router_deb": bin, "router_version": "1", "cloud": "gcp"},
			[]string{"set only one"}},
		{"missing binary", map[string]interface{}{"router_binary": "/nonexistent/ztna-router", "router_version": "1", "cloud": "gcp"},
			[]string{"router_binary: stat /nonexistent/ztna-router"}},
		{"bad enums", map[string]interface{}{"router_binary": bin, "router_version": "latest", "cloud": "ibm", "arch": "i386", "metadata_source": "vault"},
			[]string{`router_version: router version "latest": not a semantic version`, `cloud "ibm"`, `arch "i386"`, `metadata_source "vault"`}},
		{"bad cidr", map[string]interface{}{"router_binary": bin, "router_version": "1", "cloud": "aws", "ssh_allow_from": []string{"10.0.0.1/8"}},
			[]string{`ssh_allow_from[0] "10.0.0.1/8": host bits set; did you mean 10.0.0.0/8?`}},
		{"bad ntp server", map[string]interface{}{"router_binary": bin, "router_version": "1.0.0", "cloud": "aws", "ntp_servers": []string{"pool.ntp.org", "a b"}},
			[]string{`ntp_servers[1] "a b": a host name or IP address`}},
		{"not a cidr", map[string]interface{}{"router_binary": bin, "router_version": "1", "cloud": "aws", "ssh_allow_from": []string{"office"}},
			[]string{`ssh_allow_from[0] "office": not a CIDR`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Provisioner
			err := p.Prepare(tt.raw)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBaseImageFromBuilder(t *testing.T) {
	tests := []struct {
		config    string
		generated map[string]interface{}
		want      string
		wantErr   bool
	}{
		{"", map[string]interface{}{"SourceAMI": "ami-1", "SourceAMIName": "debian-12-amd64-2025"}, "debian-12-amd64-2025", false},
		{"", map[string]interface{}{"SourceImageName": "debian-12-bookworm-v20250210"}, "debian-12-bookworm-v20250210", false},
		{"explicit", map[string]interface{}{"SourceImageName": "x"}, "explicit", false},
		{"", map[string]interface{}{"PackerRunUUID": "u"}, "", true},
	}
	for _, tt := range tests {
		p := Provisioner{config: Config{BaseImage: tt.config}}
		got, err := p.baseImage(tt.generated)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("baseImage(%q, %v) = %q, %v; want %q", tt.config, tt.generated, got, err, tt.want)
		}
	}
}

func TestAttestationIsTheControlContract(t *testing.T) {
	at := time.Date(2025, 2, 3, 4, 5, 6, 789, time.FixedZone("x", 3600))
	out, err := attestation(control.Attestation{RouterVersion: "1.2.3", HardeningProfile: "ztna-v2", BuildTime: at, BaseImage: "debian-12", Cloud: "aws"})
	if err != nil {
		t.Fatal(err)
	}
	var got control.Attestation
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.BuildTime.Location() != time.UTC || !got.BuildTime.Equal(at.Truncate(time.Second)) {
		t.Errorf("build_time = %v, want %v in UTC", got.BuildTime, at)
	}
	if !strings.Contains(string(out), `"build_time": "2025-02-03T03:05:06Z"`) {
		t.Errorf("attestation:\n%s", out)
	}
}

func TestMetadataDropIn(t *testing.T) {
	aws := string(metadataDropIn("aws"))
	if !strings.Contains(aws, "Environment=ZTNA_METADATA_SOURCE=aws\n") || strings.Contains(aws, "LoadCredential") {
		t.Errorf("aws drop-in:\n%s", aws)
	}
	file := string(metadataDropIn("file"))
	for _, want := range []string{"LoadCredential=registration-key:/etc/ztna/registration-key\n", "ZTNA_BOOTSTRAP_ARGS=--key-file=%d/registration-key\n",
		"ExecStartPost=+/bin/rm -f /etc/ztna/registration-key\n"} {
		if !strings.Contains(file, want) {
			t.Errorf("file drop-in lacks %q:\n%s", want, file)
		}
	}
}

func TestHardeningProfile(t *testing.T) {
	from, _ := parseCIDRs([]string{"192.0.2.0/24"})
	for _, tt := range []struct {
		lockdown bool
		from     int
		want     string
	}{{false, 0, "ztna-v2"}, {true, 0, "ztna-v2+ssh-lockdown"}, {true, 1, "ztna-v2+ssh-lockdown+ssh-inbound"}} {
		if got := hardeningProfile(tt.lockdown, from[:tt.from]); got != tt.want {
			t.Errorf("hardeningProfile(%v, %d) = %q, want %q", tt.lockdown, tt.from, got, tt.want)
		}
	}
}

// The sysctl file must stay in the key = value form systemd-sysctl reads, a value being
// integers separated by spaces (tcp_wmem's three); whether the booted Debian kernel applies
// every key is checked by make test-image (this machine's kernel is not the image's).
func TestSysctlFileFormat(t *testing.T) {
	line := regexp.MustCompile(`^([a-z0-9_]+\.)+[a-z0-9_]+ = -?[0-9]+( [0-9]+)*$`)
	n := 0
	for _, l := range strings.Split(string(sysctlConf), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n++
		if !line.MatchString(l) {
			t.Errorf("malformed line %q", l)
		}
	}
	if n < 20 {
		t.Errorf("only %d settings", n)
	}
}

func TestInstallScriptIsValidShell(t *testing.T) {
	testenv.Integration(t, "sh")
	for _, params := range []installParams{
		{Staging: "/tmp/ztna-provision-x", Version: "1.2.3", DebVersion: "1.2.3"},
		{Staging: "/tmp/ztna-provision-x", Version: "1.3.0-rc1", DebVersion: "1.3.0~rc1", SSHLockdown: true, Upgrade: true, UnattendedUpgrades: true},
	} {
		script, err := installScript(params)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(string(script))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sh -n (%+v): %v\n%s", params, err, out)
		}
		for what, marker := range map[string]struct {
			want bool
			text string
		}{
			"sshd lock-down":      {params.SSHLockdown, "sshd_config.d"},
			"upgrade":             {params.Upgrade, "--with-new-pkgs upgrade"},
			"unattended-upgrades": {params.UnattendedUpgrades, `need="$need unattended-upgrades"`},
		} {
			if got := strings.Contains(string(script), marker.text); got != marker.want {
				t.Errorf("%+v: script has %s = %v", params, what, got)
			}
		}
	}
}

func TestAutoUpgradesConf(t *testing.T) {
	for _, tt := range []struct {
		enabled, reboot bool
		want, not       []string
	}{
		{true, true, []string{`Unattended-Upgrade "1"`, `Automatic-Reboot "true"`, `Automatic-Reboot-Time "now"`}, nil},
		{true, false, []string{`Unattended-Upgrade "1"`, `Automatic-Reboot "false"`}, []string{"Reboot-Time"}},
		{false, true, []string{`Unattended-Upgrade "0"`, `Update-Package-Lists "0"`}, []string{"Reboot"}},
	} {
		got := string(autoUpgradesConf(tt.enabled, tt.reboot))
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("enabled=%v reboot=%v: lacks %s:\n%s", tt.enabled, tt.reboot, w, got)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("enabled=%v reboot=%v: has %s:\n%s", tt.enabled, tt.reboot, n, got)
			}
		}
	}
}

func TestRulesetDropsInbound(t *testing.T) {
	ruleset, err := nftablesRuleset(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nftables.conf")
	os.WriteFile(path, ruleset, 0o644)
	nftest.New(t).CheckDefaultDenyInbound(t, path)
}

func TestRulesetSSHAllowFrom(t *testing.T) {
	from, err := parseCIDRs([]string{nftest.PeerAddr + "/32", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	ruleset, err := nftablesRuleset(from)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nftables.conf")
	os.WriteFile(path, ruleset, 0o644)
	pair := nftest.New(t)
	pair.LoadRuleset(t, path)
	pair.Listen(t, pair.Router, "0.0.0.0:22")
	if err := pair.Connect(pair.Peer, nftest.PeerAddr, nftest.RouterAddr+":22", 5*time.Second); err != nil {
		t.Errorf("SSH from an allowed address blocked: %v", err)
	}
	if err := pair.Connect(pair.Peer, nftest.PeerAltAddr, nftest.RouterAddr+":22", time.Second); err == nil {
		t.Error("SSH from an address outside ssh_allow_from got through")
	}
}

// The attestation the provisioner signs verifies with the controller's check against the
// build key, also after being written as the image's file and read back.
func TestSignedAttestation(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	keyFile := filepath.Join(t.TempDir(), "build.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	var p Provisioner
	if err := p.Prepare(map[string]interface{}{"router_binary": fakeRouter(t), "router_version": "1.0.0", "cloud": "local", "attestation_key_file": keyFile}); err != nil {
		t.Fatal(err)
	}
	a := control.Attestation{RouterVersion: "1.0.0", HardeningProfile: "ztna-v2", BuildTime: time.Now().UTC().Truncate(time.Second), BaseImage: "debian-12"}
	if err := sign(t.Context(), p.signer, &a); err != nil {
		t.Fatal(err)
	}
	out, err := attestation(a)
	if err != nil {
		t.Fatal(err)
	}
	var read control.Attestation
	if err := json.Unmarshal(out, &read); err != nil {
		t.Fatal(err)
	}
	trusted := control.TrustedKeys{control.AttestationKeyID(pub): pub}
	if got := trusted.Verify(&read); got != control.AttestationVerified {
		t.Errorf("signed attestation: %s, want verified", got)
	}

	for content, want := range map[string]string{
		"not pem": "want a PEM PRIVATE KEY",
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}})): "attestation_key_file",
	} {
		bad := filepath.Join(t.TempDir(), "bad.key")
		os.WriteFile(bad, []byte(content), 0o600)
		var p Provisioner
		err := p.Prepare(map[string]interface{}{"router_binary": fakeRouter(t), "router_version": "1.0.0", "cloud": "local", "attestation_key_file": bad})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("key %q: %v, want %q", content, err, want)
		}
	}
}
