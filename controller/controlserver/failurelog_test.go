package controlserver

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFailureLogFlood(t *testing.T) {
	var out bytes.Buffer
	f := &failureLog{log: slog.New(slog.NewTextHandler(&out, nil)), every: time.Hour}
	for range 5000 {
		f.note("control handshake failed", "error", "timeout")
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("5,000 failures within an interval wrote %d lines, want 1:\n%s", n, out.String())
	}
	f.logged = time.Now().Add(-2 * time.Hour) // the interval is over
	f.note("control handshake failed", "error", "timeout")
	if !strings.Contains(out.String(), "unlogged_since_last=4999") {
		t.Fatalf("the next line does not count the 4,999 unlogged failures:\n%s", out.String())
	}
}
