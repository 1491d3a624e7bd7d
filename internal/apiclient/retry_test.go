package apiclient

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
)

// flaky answers the first fails requests with fail, then 200 with body; it counts requests.
func flaky(t *testing.T, fails int32, fail func(w http.ResponseWriter), body string) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv, ca := server(t, api.KindController, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fails {
			fail(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})
	c, err := New(srv, "tok", ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, &n
}

func storeUnavailable(retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"type":"` + api.ProblemStoreUnavailable + `","title":"Store unavailable","status":503}`))
	}
}

// hangUp closes the connection without an answer, as a controller that dies mid-request.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestRetries503ForEveryMethodHonouringRetryAfter(t *testing.T) {
	const svc = `{"id":"x","name":"db","port":5432}`
	for _, tc := range []struct {
		name string
		call func(context.Context, *Client) error
	}{
		{"GET", func(ctx context.Context, c *Client) error { _, err := c.GetService(ctx, "x"); return err }},
		{"POST", func(ctx context.Context, c *Client) error {
			_, err := c.CreateService(ctx, api.ServiceCreate{Name: "db"})
			return err
		}},
		{"DELETE", func(ctx context.Context, c *Client) error { return c.DeleteService(ctx, "x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, n := flaky(t, 2, storeUnavailable("1"), svc)
			start := time.Now()
			if err := tc.call(t.Context(), c); err != nil {
				t.Fatalf("after two 503s: %v", err)
			}
			if got := n.Load(); got != 3 {
				t.Errorf("%d requests, want 3", got)
			}
			// Two waits of the server's Retry-After (1 s), not the 200 ms backoff.
			if d := time.Since(start); d < 2*time.Second {
				t.Errorf("retried after %v in all, want at least the 2 s Retry-After asked for", d)
			}
		})
	}
}

func TestRetryStopsAtTheContextDeadline(t *testing.T) {
	c, n := flaky(t, 1<<30, storeUnavailable("1"), "")
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ListRouters(ctx)
	if ProblemType(err) != api.ProblemStoreUnavailable {
		t.Fatalf("want the last 503 problem, got %v", err)
	}
	var e *Error
	if !statusIs(err, http.StatusServiceUnavailable) || !errors.As(err, &e) || e.RetryAfter != time.Second {
		t.Errorf("error %v: want status 503 with RetryAfter 1s", err)
	}
	// Attempts at 0, 1 and 2 s (later under load); one that would start after the deadline
	// is not sent.
	if got := n.Load(); got < 2 || got > 3 {
		t.Errorf("%d requests, want 2 or 3", got)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("gave up after %v, past the 2.5 s deadline", d)
	}
}

func TestTransportErrorsRetriedOnlyForIdempotentMethods(t *testing.T) {
	const svc = `{"id":"x","name":"db","port":5432}`
	t.Run("GET", func(t *testing.T) {
		c, n := flaky(t, 1, hangUp, svc)
		if _, err := c.GetService(t.Context(), "x"); err != nil {
			t.Fatalf("GET after a lost connection: %v", err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%d requests, want 2", got)
		}
	})
	t.Run("POST", func(t *testing.T) {
		c, n := flaky(t, 1, hangUp, svc)
		// A POST whose connection broke may have been applied: sending it again could
		// create a second object.
		if _, err := c.CreateService(t.Context(), api.ServiceCreate{Name: "db"}); err == nil {
			t.Fatal("POST retried after a lost connection")
		}
		if got := n.Load(); got != 1 {
			t.Errorf("%d requests, want 1", got)
		}
	})
}

func TestOtherErrorsNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusInternalServerError, http.StatusInsufficientStorage} {
		c, n := flaky(t, 1, func(w http.ResponseWriter) { w.WriteHeader(status) }, "{}")
		if _, err := c.ListRouters(t.Context()); !statusIs(err, status) {
			t.Errorf("%d: got %v", status, err)
		}
		if got := n.Load(); got != 1 {
			t.Errorf("%d: %d requests, want 1", status, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	future := parseRetryAfter(time.Now().Add(time.Minute).UTC().Format(http.TimeFormat))
	if future < 58*time.Second || future > time.Minute {
		t.Errorf("HTTP date a minute ahead: %v", future)
	}
}
