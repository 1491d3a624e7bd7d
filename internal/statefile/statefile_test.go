package statefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type record struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

func TestSaveLoadRoundTripOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.json")
	want := record{Name: "r1", PID: 42}
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load[record](path)
	if err != nil || got != want {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load[record](filepath.Join(dir, "absent.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	corrupt := filepath.Join(dir, "corrupt.json")
	os.WriteFile(corrupt, []byte(`{"name": "r1", "pid": `), 0o600)
	_, err := Load[record](corrupt)
	if err == nil || !strings.Contains(err.Error(), corrupt+" is corrupt") {
		t.Errorf("corrupt file: %v, want an error naming %s as corrupt", err, corrupt)
	}
}
