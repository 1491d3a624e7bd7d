// Package replicas tests controller replicas on PostgreSQL as processes: several
// `ztna-controller run` sharing one database (started by scripts/postgres.sh), routers
// (`ztna-router run`) connected to different replicas, and a replica killed with SIGKILL.
package replicas

import (
	"os"
	"testing"

	"github.com/ztna/ztna/controller/store/postgres/pgtest"
	"github.com/ztna/ztna/tests/dataplane/harness"
)

// TestMain starts PostgreSQL and builds the binaries (unless $ZTNA_BIN_DIR has them).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(withBinaries{m})) }

type withBinaries struct{ m *testing.M }

func (w withBinaries) Run() int { return harness.Main(w.m) }
