package ztnarouter

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/template"
	"time"

	"github.com/ztna/ztna/internal/control"
)

// ProfileBase names the hardening this provisioner applies: nftables default-deny inbound, the
// sysctl set in files/sysctl.conf and the sandboxed units of the ztna-router package. Bump it
// whenever one of them changes, so attestations tell images apart.
const ProfileBase = "ztna-v2"

var (
	//go:embed files/nftables.conf.tmpl
	nftablesTemplate string
	//go:embed files/sysctl.conf
	sysctlConf []byte
	//go:embed files/sshd-lockdown.conf
	sshdLockdown []byte
	//go:embed files/install.sh.tmpl
	installTemplate string
	//go:embed files/resolved.conf
	resolvedConf []byte
	//go:embed files/ssh-hostkeys.service
	sshHostKeysUnit []byte
)

var nftablesTmpl = template.Must(template.New("nftables").Funcs(template.FuncMap{"join": strings.Join}).Parse(nftablesTemplate))

// hardeningProfile names what was applied, e.g. "ztna-v2+ssh-lockdown".
func hardeningProfile(sshLockdown bool, sshFrom []netip.Prefix) string {
	p := ProfileBase
	if sshLockdown {
		p += "+ssh-lockdown"
	}
	if len(sshFrom) > 0 {
		p += "+ssh-inbound"
	}
	return p
}

// parseCIDRs parses ssh_allow_from, naming the bad entry.
func parseCIDRs(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("ssh_allow_from[%d] %q: not a CIDR such as 203.0.113.0/24 or 2001:db8::/32", i, c)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("ssh_allow_from[%d] %q: host bits set; did you mean %s?", i, c, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

// nftablesRuleset renders /etc/nftables.conf.
func nftablesRuleset(sshFrom []netip.Prefix) ([]byte, error) {
	var data struct{ SSHFromV4, SSHFromV6 []string }
	for _, p := range sshFrom {
		if p.Addr().Is4() {
			data.SSHFromV4 = append(data.SSHFromV4, p.String())
		} else {
			data.SSHFromV6 = append(data.SSHFromV6, p.String())
		}
	}
	var buf bytes.Buffer
	if err := nftablesTmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// metadataDropIn renders the drop-in that tells the first-boot unit where to read the
// registration key. For "file" systemd hands the key file over as a credential, so the file may
// stay readable by root only.
func metadataDropIn(source string) []byte {
	var b strings.Builder
	b.WriteString("# Written by the ztna-router Packer provisioner: where first boot reads the registration key.\n[Service]\n")
	fmt.Fprintf(&b, "Environment=ZTNA_METADATA_SOURCE=%s\n", source)
	if source == "file" {
		fmt.Fprintf(&b, "LoadCredential=registration-key:%s\n", KeyFilePath)
		b.WriteString("Environment=ZTNA_BOOTSTRAP_ARGS=--key-file=%d/registration-key\n")
		// The key is single-use: once enrolled, it has no business on the disk ("+": as root,
		// the only step of the unit that is).
		fmt.Fprintf(&b, "ExecStartPost=+/bin/rm -f %s\n", KeyFilePath)
	}
	return []byte(b.String())
}

// KeyFilePath is where an image built for the "file" metadata source expects the key.
const KeyFilePath = "/etc/ztna/registration-key"

// attestation renders /etc/ztna/image.json. Provision truncates the build time before
// signing; doing it here again changes nothing then.
func attestation(a control.Attestation) ([]byte, error) {
	a.BuildTime = a.BuildTime.UTC().Truncate(time.Second)
	out, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// autoUpgradesConf renders /etc/apt/apt.conf.d/52ztna-auto-upgrades, the image's patch policy:
// a daily unattended security upgrade, and a reboot right after a run that needs one (Debian's
// 50unattended-upgrades limits the run to the security suite). Services restart as their
// packages' maintainer scripts say (ztna-router's postinst restarts the router); the reboot
// covers what a restart cannot (kernel, libc).
func autoUpgradesConf(enabled, reboot bool) []byte {
	var b strings.Builder
	b.WriteString("// Written by the ztna-router Packer provisioner: the image's patch policy.\n")
	if !enabled {
		b.WriteString("APT::Periodic::Update-Package-Lists \"0\";\nAPT::Periodic::Unattended-Upgrade \"0\";\n")
		return []byte(b.String())
	}
	b.WriteString("APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n")
	b.WriteString("Unattended-Upgrade::Remove-Unused-Kernel-Packages \"true\";\n")
	fmt.Fprintf(&b, "Unattended-Upgrade::Automatic-Reboot \"%t\";\n", reboot)
	if reboot {
		// "now": right after the run, which apt-daily-upgrade.timer spreads over an hour, so
		// the routers of one network do not all reboot at the same minute.
		b.WriteString("Unattended-Upgrade::Automatic-Reboot-Time \"now\";\n")
	}
	return []byte(b.String())
}

// timesyncdConf renders /etc/systemd/timesyncd.conf.d/50-ztna.conf; without servers it only
// says that Debian's pool applies.
func timesyncdConf(servers []string) []byte {
	var b strings.Builder
	b.WriteString("# Written by the ztna-router Packer provisioner (ntp_servers).\n[Time]\n")
	if len(servers) == 0 {
		b.WriteString("# No ntp_servers: Debian's pool (FallbackNTP) applies.\n")
	} else {
		fmt.Fprintf(&b, "NTP=%s\n", strings.Join(servers, " "))
	}
	return []byte(b.String())
}
