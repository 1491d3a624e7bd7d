package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/storetest"
)

// TestConformance runs the backend-agnostic store contract against SQLite. Several stores on
// one file stand for several controller processes sharing it (or one restarting); SQLite's
// change feed is per process, so the cross-replica feed tests do not apply.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, filepath.Join(t.TempDir(), "z.db")) })
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, storetest.Shared{NewDatabase: func(t *testing.T) func(*testing.T) store.Store {
			path := filepath.Join(t.TempDir(), "z.db")
			return func(t *testing.T) store.Store { return open(t, path) }
		}})
	})
}
