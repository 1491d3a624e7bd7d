package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/router/resolve"
)

// SettingsFile holds the router's local settings inside its state directory: what the host
// knows about itself and its network, as opposed to what the controller said (config.json).
const SettingsFile = "router.json"

// Settings are local router settings; `run` flags override them.
type Settings struct {
	// FailureDomain names the host's failure domain (cloud/region/zone) for redundancy checks.
	FailureDomain string `json:"failure_domain,omitempty"`
	// DNSServer is the customer's DNS server (host:port) for service names; "" = host resolver.
	DNSServer string `json:"dns_server,omitempty"`
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if s.DNSServer != "" {
		return resolve.Validate(s.DNSServer)
	}
	return nil
}

// LoadSettings reads dir's settings; a missing file means defaults.
func LoadSettings(dir string) (Settings, error) {
	var s Settings
	raw, err := os.ReadFile(filepath.Join(dir, SettingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, SettingsFile), err)
	}
	return s, s.Validate()
}

// SaveSettings writes dir's settings atomically.
func SaveSettings(dir string, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, SettingsFile), append(raw, '\n'), 0o644)
}
