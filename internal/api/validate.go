package api

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	roleRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	labelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)
)

// MaxNameLen and MaxRoleLen bound names and roles; both end up in logs, DNS and certificates.
const (
	MaxNameLen = 100
	MaxRoleLen = 63
)

// ValidateName checks the name of a router, service, identity or policy.
func ValidateName(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("must be at most %d characters", MaxNameLen)
	case !nameRE.MatchString(s):
		return fmt.Errorf("%q must start with a letter or digit and contain only letters, digits, '.', '_' and '-'", s)
	}
	return nil
}

// ValidateRole checks one role: lower-case letters, digits, '.', '_' and '-'.
func ValidateRole(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxRoleLen:
		return fmt.Errorf("must be at most %d characters", MaxRoleLen)
	case !roleRE.MatchString(s):
		return fmt.Errorf("%q must start with a lower-case letter or digit and contain only lower-case letters, digits, '.', '_' and '-'", s)
	}
	return nil
}

// ValidateRoles checks a list of roles into fe, naming the bad element ("roles[2]").
// Duplicates are rejected because they hide typos in Terraform configurations.
func ValidateRoles(fe *FieldErrors, field string, roles []string) {
	seen := map[string]bool{}
	for i, r := range roles {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := ValidateRole(r); err != nil {
			fe.Add(f, err)
			continue
		}
		if seen[r] {
			fe.Add(f, fmt.Errorf("duplicate role %q", r))
		}
		seen[r] = true
	}
}

// ValidateNames checks a list of object names into fe, naming the bad element.
func ValidateNames(fe *FieldErrors, field string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := ValidateName(n); err != nil {
			fe.Add(f, err)
			continue
		}
		if seen[n] {
			fe.Add(f, fmt.Errorf("duplicate name %q", n))
		}
		seen[n] = true
	}
}

// ValidateAddress accepts an IPv4/IPv6 address or a fully qualified domain name
// (letters, digits and '-' per label, labels of 1–63 characters, at most 253 in total,
// a trailing dot allowed, the last label not all-numeric).
func ValidateAddress(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%q: IPv6 zones are host-local; give the address without %%zone", s)
		}
		return nil
	}
	return ValidateFQDN(s)
}

// ValidateFQDN checks a DNS name as described at ValidateAddress.
func ValidateFQDN(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return errors.New("must not be empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || !labelRE.MatchString(l) {
			return fmt.Errorf("%q is neither an IP address nor a valid DNS name (each dot-separated label: 1-63 letters, digits or '-', not starting or ending with '-')", s)
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return fmt.Errorf("%q is neither an IP address nor a valid DNS name (the last label must not be numeric)", s)
	}
	return nil
}

// ValidatePort checks a TCP/UDP port number (1–65535).
func ValidatePort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%d is not a port: must be between 1 and 65535", p)
	}
	return nil
}

// ParsePortRange parses "from-to" (both ports, from <= to); a single port "N" means N-N.
func ParsePortRange(s string) (from, to int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	from, errA := strconv.Atoi(strings.TrimSpace(a))
	to, errB := strconv.Atoi(strings.TrimSpace(b))
	if errA != nil || errB != nil {
		return 0, 0, fmt.Errorf("%q is not a port range: write it as \"from-to\", e.g. \"8000-8100\"", s)
	}
	if err := ValidatePort(from); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", s, err)
	}
	if err := ValidatePort(to); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", s, err)
	}
	if from > to {
		return 0, 0, fmt.Errorf("range %q starts after it ends", s)
	}
	return from, to, nil
}

// ValidatePortRange checks one "from-to" string.
func ValidatePortRange(s string) error {
	_, _, err := ParsePortRange(s)
	return err
}

// ValidateProtocol accepts "tcp", the only protocol the data plane carries. "udp" is refused
// until datagrams are carried end to end: a UDP service that validates but that no router,
// SDK or tunnel can reach would be a trap.
func ValidateProtocol(s string) error {
	switch s {
	case ProtocolTCP:
		return nil
	case ProtocolUDP:
		return errors.New(`"udp" services are not carried yet: the data plane carries TCP streams only, so no client could reach this service; declare protocol "tcp" (or leave protocol out)`)
	default:
		return fmt.Errorf(`%q is not a protocol: use "tcp"`, s)
	}
}

// ValidateTTLSeconds checks the ttl of a key or token; 0 means the default.
func ValidateTTLSeconds(s int) error {
	if s < 0 || s > MaxKeyTTLSeconds {
		return fmt.Errorf("%d is out of range: must be between 1 and %d seconds (0 or absent = %d)", s, MaxKeyTTLSeconds, int(DefaultKeyTTL.Seconds()))
	}
	return nil
}

// ValidateCost checks a router's static cost (added to link cost by smart routing).
func ValidateCost(c int) error {
	if c < 0 || c > 1_000_000 {
		return fmt.Errorf("%d is out of range: must be between 0 and 1000000", c)
	}
	return nil
}
