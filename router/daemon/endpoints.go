package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/controlclient"
)

// EndpointsFile holds, in the router's state directory, the controller's control endpoints as
// the controller last listed them in a welcome. The router dials them (then the enrolled ones)
// from its next start on, so that it finds controller replicas added after its enrolment.
const EndpointsFile = "controllers.json"

// savedEndpoints is EndpointsFile. RouterID and CAFingerprint tie it to one enrolment: a state
// directory enrolled again into another router or network ignores it.
type savedEndpoints struct {
	RouterID      string    `json:"router_id"`
	CAFingerprint string    `json:"ca_fingerprint"`
	Control       []string  `json:"control"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// loadEndpoints returns the control endpoints saved in dir for the enrolment cfg, or nil when
// there are none for it.
func loadEndpoints(dir string, cfg api.EnrolledConfig) ([]string, error) {
	path := filepath.Join(dir, EndpointsFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s savedEndpoints
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.RouterID != cfg.ID || s.CAFingerprint != cfg.CAFingerprint {
		return nil, fmt.Errorf("%s was learned by router %s of the network with CA %s, not by this one (%s, %s): delete it", path, s.RouterID, s.CAFingerprint, cfg.ID, cfg.CAFingerprint)
	}
	list, err := controlclient.ValidEndpoints(s.Control)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

// saveEndpoints writes the controller's control endpoints for the enrolment cfg atomically.
func saveEndpoints(dir string, cfg api.EnrolledConfig, control []string) error {
	raw, err := json.MarshalIndent(savedEndpoints{RouterID: cfg.ID, CAFingerprint: cfg.CAFingerprint, Control: control,
		UpdatedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(filepath.Join(dir, EndpointsFile), append(raw, '\n'), 0o600)
}
