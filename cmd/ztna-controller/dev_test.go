package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an io.Writer the command writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A data dir made by hand (0755, with 0644 files in it) is made private: the directory 0700
// and every file in it, those dev finds and those it creates (store, WAL, CA, env), 0600.
func TestDevMakesDataDirPrivate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing bool
	}{{"new", false}, {"existing 0755", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tc.existing {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				os.Chmod(dir, 0o755) // whatever the umask
				for name, content := range map[string]string{devStoreFile: "", devTokenFile: "ztna_0123456789abcdefghij\n"} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
					os.Chmod(filepath.Join(dir, name), 0o644)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			root := rootCommand()
			var out, logs lockedBuffer
			root.SetOut(&out)
			root.SetErr(&logs)
			root.SetArgs([]string{"dev", "--data-dir", dir})
			done := make(chan error, 1)
			go func() { done <- root.ExecuteContext(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("dev: %v", err)
				}
			}()
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(out.String(), "ready") {
				select {
				case err := <-done:
					done <- err
					t.Fatalf("dev exited: %v\n%s", err, logs.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("dev not ready:\n%s", logs.String())
				}
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range entries {
				info, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				seen[e.Name()] = true
				if info.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
				}
			}
			for _, name := range []string{devStoreFile, devStoreFile + "-wal", devEnvFile, devTokenFile, "ca.pem", "ca-key.pem"} {
				if !seen[name] {
					t.Errorf("%s missing from the data dir (have %v)", name, entries)
				}
			}
		})
	}
}
