package tunnel

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/nettest"
)

// Each side's clean end reaches the other as a half-close, data still flows the other way,
// and Relay reports success.
func TestRelayPassesHalfCloses(t *testing.T) {
	prog, local := nettest.TCPPair(t) // the program and the tunnel's accepted connection
	remote, svc := nettest.TCPPair(t) // the overlay stream and the service behind it
	done := make(chan error, 1)
	go func() { done <- Relay(local, remote) }()

	io.WriteString(prog, "request")
	prog.CloseWrite()
	got, err := io.ReadAll(svc) // ends: the program's half-close arrived
	if err != nil || string(got) != "request" {
		t.Fatalf("service read %q, %v", got, err)
	}
	io.WriteString(svc, "response after the request ended")
	svc.CloseWrite()
	prog.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err = io.ReadAll(prog)
	if err != nil || string(got) != "response after the request ended" {
		t.Fatalf("program read %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
}

// A broken overlay stream is passed on as a reset, never as a clean (truncated) end.
func TestRelayPassesFailureAsReset(t *testing.T) {
	prog, local := nettest.TCPPair(t)
	remote, svc := nettest.TCPPair(t)
	done := make(chan error, 1)
	go func() { done <- Relay(local, remote) }()

	io.WriteString(svc, "partial")
	buf := make([]byte, 7)
	prog.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(prog, buf); err != nil {
		t.Fatal(err)
	}
	svc.SetLinger(0)
	svc.Close() // the far side fails mid-stream
	_, err := io.ReadAll(prog)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("program read after the failure: %v, want connection reset", err)
	}
	if err := <-done; err == nil {
		t.Fatal("relay reported success for a failed stream")
	}
}

// A program that resets its connection aborts the overlay stream at once, while the service
// behind it is still silent (a failure in either direction ends both).
func TestRelayPassesProgramResetToTheOverlay(t *testing.T) {
	prog, local := nettest.TCPPair(t)
	remote, svc := nettest.TCPPair(t)
	done := make(chan error, 1)
	go func() { done <- Relay(local, remote) }()

	io.WriteString(prog, "half a request")
	buf := make([]byte, 14)
	svc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(svc, buf); err != nil {
		t.Fatal(err)
	}
	prog.SetLinger(0)
	prog.Close() // the program fails mid-request; the service has not answered yet
	if _, err := io.ReadAll(svc); isTimeout(err) {
		t.Fatalf("the overlay stream outlived the program's reset: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("relay reported success for a reset connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running after the program's reset")
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
