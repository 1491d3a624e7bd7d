package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ztna/ztna/controller/store"
)

func TestClassify(t *testing.T) {
	pgErr := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	refused := &net.OpError{Op: "dial", Net: "unix", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: passed through unclassified
	}{
		{"disk full", pgErr("53100"), store.ErrFull},
		{"too many connections", pgErr("53300"), store.ErrUnavailable},
		{"out of memory", pgErr("53200"), store.ErrUnavailable},
		{"connection failure", pgErr("08006"), store.ErrUnavailable},
		{"admin shutdown", pgErr("57P01"), store.ErrUnavailable},
		{"crash shutdown", pgErr("57P02"), store.ErrUnavailable},
		{"cannot connect now", pgErr("57P03"), store.ErrUnavailable},
		{"connection refused", refused, store.ErrUnavailable},
		{"connection broke mid-query", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), store.ErrUnavailable},
		{"unique violation", pgErr(codeUniqueViolation), nil},
		{"query canceled", pgErr("57014"), nil},
		{"caller gone", fmt.Errorf("acquire: %w", context.Canceled), nil},
		{"other", errors.New("corrupt record"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("classify lost the cause: %v", got)
			}
			full, unavailable := errors.Is(got, store.ErrFull), errors.Is(got, store.ErrUnavailable)
			switch tc.want {
			case store.ErrFull:
				if !full || unavailable {
					t.Errorf("%v: want ErrFull only", got)
				}
			case store.ErrUnavailable:
				if !unavailable || full {
					t.Errorf("%v: want ErrUnavailable only", got)
				}
			default:
				if full || unavailable {
					t.Errorf("%v: want it unclassified", got)
				}
			}
			if again := classify(got); again != got {
				t.Errorf("classifying twice wraps again: %v", again)
			}
		})
	}
}

// A COMMIT whose answer was lost may have committed: it must not read as "store unavailable,
// nothing changed", which clients answer by sending the request again.
func TestLostCommitIsNotUnavailable(t *testing.T) {
	err := error(&commitUnknownError{err: io.ErrUnexpectedEOF})
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%v reads as its cause or as unavailable", err)
	}
	if !errors.Is(classify(io.ErrUnexpectedEOF), store.ErrUnavailable) {
		t.Fatal("a lost connection outside COMMIT is no longer unavailable")
	}
}
