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
	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/router/controlclient"
)

// Files in the router's state directory that hold what the controller listed in its last
// welcome, newer than the enrolment: the router dials them from its next start on, so that it
// finds controller replicas and hubs added after its enrolment even while the controller is down.
const (
	// EndpointsFile holds the controller's control endpoints (dialled first, then the enrolled ones).
	EndpointsFile = "controllers.json"
	// HubsFile holds the fabric addresses of the hubs (linked to instead of the enrolled ones).
	HubsFile = "hubs.json"
)

// savedList is the content of EndpointsFile and HubsFile. RouterID and CAFingerprint tie it to
// one enrolment: a state directory enrolled again into another router or network ignores it.
type savedList struct {
	RouterID      string    `json:"router_id"`
	CAFingerprint string    `json:"ca_fingerprint"`
	Control       []string  `json:"control,omitempty"` // EndpointsFile
	Fabric        []string  `json:"fabric,omitempty"`  // HubsFile
	UpdatedAt     time.Time `json:"updated_at"`
}

// learnedList is one of those files: its name, what its addresses are (for errors) and which
// field of savedList holds them.
type learnedList struct {
	file, what string
	field      func(*savedList) *[]string
}

var (
	learnedControl = learnedList{EndpointsFile, "control endpoint", func(s *savedList) *[]string { return &s.Control }}
	learnedHubs    = learnedList{HubsFile, "hub fabric address", func(s *savedList) *[]string { return &s.Fabric }}
)

// LearnedControl returns the control endpoints saved in dir for the enrolment cfg, or nil when
// there are none for it.
func LearnedControl(dir string, cfg api.EnrolledConfig) ([]string, error) {
	return learnedControl.load(dir, cfg)
}

// LearnedHubs returns the hub fabric addresses saved in dir for the enrolment cfg, or nil when
// there are none for it.
func LearnedHubs(dir string, cfg api.EnrolledConfig) ([]string, error) {
	return learnedHubs.load(dir, cfg)
}

func (l learnedList) load(dir string, cfg api.EnrolledConfig) ([]string, error) {
	path := filepath.Join(dir, l.file)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s savedList
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.RouterID != cfg.ID || s.CAFingerprint != cfg.CAFingerprint {
		return nil, fmt.Errorf("%s was learned by router %s of the network with CA %s, not by this one (%s, %s): delete it", path, s.RouterID, s.CAFingerprint, cfg.ID, cfg.CAFingerprint)
	}
	list, err := controlclient.ValidAddrs(l.what, *l.field(&s))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// save writes list for the enrolment cfg atomically.
func (l learnedList) save(dir string, cfg api.EnrolledConfig, list []string) error {
	s := savedList{RouterID: cfg.ID, CAFingerprint: cfg.CAFingerprint, UpdatedAt: time.Now().UTC()}
	*l.field(&s) = list
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, l.file), append(raw, '\n'), 0o600)
}
