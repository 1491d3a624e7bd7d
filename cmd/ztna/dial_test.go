package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/nettest"
)

// streamTo connects to a server running serve and returns the client end.
func streamTo(t *testing.T, serve func(*net.TCPConn)) *net.TCPConn {
	t.Helper()
	addr := nettest.Serve(t, func(c net.Conn) {
		defer c.Close()
		serve(c.(*net.TCPConn))
	})
	c, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pipeWithin runs pipe and fails if it does not return within d.
func pipeWithin(t *testing.T, d time.Duration, ctx context.Context, s *net.TCPConn, in io.Reader, out io.Writer) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- pipe(ctx, s, in, out) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("pipe did not return within %v", d)
		return nil
	}
}

func TestPipe(t *testing.T) {
	countThenClose := func(c *net.TCPConn) { // answers only after the input ended
		n, _ := io.Copy(io.Discard, c)
		io.WriteString(c, "got "+strconv.FormatInt(n, 10))
	}
	// stdin left open: pipe returns without waiting for it (the command exits then), and the
	// subtest's end closes it, which ends pipe's reader of it.
	openStdin := func(t *testing.T) io.Reader {
		r, w := io.Pipe()
		t.Cleanup(func() { w.Close() })
		return r
	}
	for _, tc := range []struct {
		name    string
		serve   func(*net.TCPConn)
		in      func(*testing.T) io.Reader
		cancel  bool
		wantOut string
		wantErr string
	}{
		{
			name: "stdin's end is passed on and the answer still arrives", serve: countThenClose,
			in: func(*testing.T) io.Reader { return strings.NewReader(strings.Repeat("x", 1<<20)) }, wantOut: "got 1048576",
		},
		{
			name:  "the service ending first ends dial while stdin is still open",
			serve: func(c *net.TCPConn) { io.WriteString(c, "bye") },
			in:    openStdin, wantOut: "bye",
		},
		{
			name: "a reset is an error, not a clean end",
			serve: func(c *net.TCPConn) {
				io.WriteString(c, "partial")
				time.Sleep(50 * time.Millisecond)
				c.SetLinger(0)
				c.Close()
			},
			in: openStdin, wantOut: "partial", wantErr: "broke",
		},
		{
			name:  "an interrupt ends it",
			serve: func(c *net.TCPConn) { io.Copy(io.Discard, c) },
			in:    openStdin, cancel: true, wantErr: "interrupted",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := streamTo(t, tc.serve)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			var out bytes.Buffer
			err := pipeWithin(t, 5*time.Second, ctx, s, tc.in(t), &out)
			if out.String() != tc.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tc.wantOut)
			}
			if tc.wantErr == "" && err != nil {
				t.Errorf("error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
