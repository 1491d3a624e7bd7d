package targets

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ztna/ztna/internal/control"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, found, err := Load(dir); found || err != nil {
		t.Fatalf("empty dir: found=%v err=%v", found, err)
	}
	want := []control.Service{{ID: "s", Name: "db", Address: "db.test", Port: 5432, PortRanges: []control.PortRange{{From: 1, To: 2}}, Protocol: "tcp"}}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, found, err := Load(dir)
	if err != nil || !found || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v %v %v", got, found, err)
	}
	os.WriteFile(filepath.Join(dir, CacheFile), []byte("{"), 0o600)
	if _, _, err := Load(dir); err == nil {
		t.Fatal("corrupt cache accepted")
	}
}
