package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ztna/ztna/controller/store"
	"github.com/ztna/ztna/internal/backoff"
)

// How the listener notices a connection that died silently (a cut network sends no reset):
// after pingAfter without a notification it pings the server, and a ping that fails within
// pingTimeout drops the connection.
const (
	pingAfter   = 10 * time.Second
	pingTimeout = 5 * time.Second
)

// healthyAfter is how long a connection must have lasted for the reconnect backoff to start
// over, so a server that accepts and then drops connections is not hammered.
const healthyAfter = 30 * time.Second

// runListener keeps one connection LISTENing on notifyChannel and publishes every change it
// hears to the local Feed. The first connection's outcome goes to ready; after that it
// reconnects forever (with backoff) and, once listening again, publishes a Change with
// Collection All because changes committed in between were not heard.
func (s *Store) runListener(ctx context.Context, cfg *pgx.ConnConfig, ready chan<- error) {
	defer close(s.listen)
	bo := backoff.New(50*time.Millisecond, 5*time.Second)
	first := true
	for {
		conn, err := listenConn(ctx, cfg)
		if err != nil {
			if first {
				ready <- err
				return
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("change feed: cannot reconnect to PostgreSQL", "err", err)
		} else {
			if first {
				first = false
				ready <- nil
			} else {
				s.log.Info("change feed: listening again; subscribers re-read everything")
				s.Publish(store.Change{Collection: store.All})
			}
			since := time.Now()
			err = s.receive(ctx, conn)
			conn.Close(context.Background())
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("change feed: lost the PostgreSQL connection; reconnecting", "err", err)
			if time.Since(since) > healthyAfter {
				bo.Reset()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bo.Next()):
		}
	}
}

func listenConn(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive publishes notifications until the connection fails or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, pingAfter)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.deliver(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			// Quiet for a while: make sure the server is still there.
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

// deliver publishes the changes of one notification (one committed transaction).
func (s *Store) deliver(payload string) {
	var changes []store.Change
	if err := json.Unmarshal([]byte(payload), &changes); err != nil {
		// Not ours to understand (a newer replica?): be safe, make everyone re-read.
		s.log.Warn("change feed: unreadable notification; subscribers re-read everything", "err", err)
		s.Publish(store.Change{Collection: store.All})
		return
	}
	for _, c := range changes {
		s.Publish(c)
	}
}
