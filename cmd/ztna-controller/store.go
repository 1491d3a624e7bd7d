package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ztna/ztna/controller"
	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/controller/store/postgres"
	"github.com/ztna/ztna/controller/store/sqlite"
	"github.com/ztna/ztna/internal/pki"
)

// Store drivers of the config file.
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// storeConfig says which store to open: the embedded SQLite file of one controller, or a
// PostgreSQL database that replicas share.
type storeConfig struct {
	driver       string
	dsn          string // sqlite: database file; postgres: DSN
	caSecretFile string // postgres: the secret that seals the network CA key in the database
}

// openStore opens the store. For PostgreSQL it also returns the network CA kept in the
// database (created by the first replica), so every replica signs with it; for SQLite the
// CA is nil and the controller keeps its CA in its data directory.
func openStore(ctx context.Context, sc storeConfig, log *slog.Logger) (store.Store, *pki.CA, error) {
	if sc.driver != driverPostgres {
		st, err := sqlite.Open(ctx, sc.dsn)
		return st, nil, err
	}
	secret, err := readSecretFile("store.ca_secret_file", sc.caSecretFile, postgres.MinCASecretLen)
	if err != nil {
		return nil, nil, err
	}
	st, err := postgres.Open(ctx, sc.dsn, log.With("component", "store"))
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	ca, created, err := st.LoadOrCreateCA(ctx, []byte(secret), controller.NetworkCAName)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if created {
		log.Info("created network CA in the database", "fingerprint", ca.Fingerprint())
	}
	return st, ca, nil
}
