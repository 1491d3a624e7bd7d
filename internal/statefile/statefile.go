// Package statefile keeps a program's record of what it made outside itself (processes,
// namespaces, firewall tables) as an indented JSON file, replaced atomically, so that the
// command that removes it always finds the whole record of what to remove.
package statefile

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ztna/ztna/internal/atomicfile"
)

// Load reads the record at path. A missing file is an error wrapping fs.ErrNotExist (nothing
// was made); an unreadable record says so, with the path.
func Load[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s is corrupt: %w", path, err)
	}
	return v, nil
}

// Save replaces the record at path with v, readable by the owner only (it names processes
// and may be all that lets them be stopped).
func Save(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}
