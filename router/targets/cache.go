package targets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ztna/ztna/internal/atomicfile"
	"github.com/ztna/ztna/internal/control"
)

// CacheFile is where a router keeps its last assignment inside its state directory, so that
// after a restart it can host (and preflight can check) its services while the controller is
// unreachable.
const CacheFile = "assignments.json"

// Save writes an assignment to dir atomically.
func Save(dir string, services []control.Service) error {
	if services == nil {
		services = []control.Service{}
	}
	raw, err := json.MarshalIndent(control.Assignment{Services: services}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, CacheFile), append(raw, '\n'), 0o600)
}

// Load reads the assignment saved in dir; found is false when there is none yet.
func Load(dir string) (services []control.Service, found bool, err error) {
	raw, err := os.ReadFile(filepath.Join(dir, CacheFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var a control.Assignment
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(dir, CacheFile), err)
	}
	return a.Services, true, nil
}
