package edgeapi_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
)

// replyLosingProxy relays TCP to target. On its first connection it passes the client's bytes
// on in full but, once the client has sent its request (more than requestBytes of TLS
// application data after the first such record, the TLS 1.3 Finished), it closes the client's
// side instead of passing on the controller's answer, and reads that answer to its end: the
// controller handles the request and its reply is lost, as after a timeout, a proxy reset or
// a dropped link.
type replyLosingProxy struct {
	addr   string
	target atomic.Pointer[string] // set once the controller listens, before the first connection
	conns  atomic.Int32
	lost   atomic.Int64 // bytes of the controller's answer that never reached the client
	done   sync.WaitGroup
}

const requestBytes = 700 // an enrolment request carries a CSR: well over this

func newReplyLosingProxy(t *testing.T) *replyLosingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyLosingProxy{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close(); p.done.Wait() })
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.done.Add(1)
			go func() { defer p.done.Done(); p.relay(c, p.conns.Add(1) == 1) }()
		}
	}()
	return p
}

func (p *replyLosingProxy) relay(client net.Conn, loseReply bool) {
	defer client.Close()
	server, err := net.Dial("tcp", *p.target.Load())
	if err != nil {
		return
	}
	defer server.Close()
	var requestSent atomic.Bool
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if !loseReply {
			io.Copy(server, client)
			return
		}
		// Follow the client's TLS records: type 23 is application data (in TLS 1.3 every
		// encrypted record, the first being the client's Finished).
		var appData, records int
		hdr := make([]byte, 5)
		for {
			if _, err := io.ReadFull(client, hdr); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint16(hdr[3:]))
			body := make([]byte, n)
			if _, err := io.ReadFull(client, body); err != nil {
				return
			}
			if _, err := server.Write(append(hdr, body...)); err != nil {
				return
			}
			if hdr[0] == 23 {
				if records++; records > 1 {
					appData += n
				}
			}
			if appData > requestBytes {
				requestSent.Store(true)
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if requestSent.Load() {
				// The answer: lose it. Drop the client, let the controller finish.
				client.Close()
				p.lost.Add(int64(n))
				m, _ := io.Copy(io.Discard, server)
				p.lost.Add(m)
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			client.Close()
			<-sent
			return
		}
	}
}

// TestEnrolmentReplyLost: the controller consumed the key but its reply never arrived. The
// enrolling side retries with the same private key and CSR and gets its certificate; the
// same key with any other public key is still refused.
func TestEnrolmentReplyLost(t *testing.T) {
	p := newReplyLosingProxy(t)
	e := startAdvertising(t, p.addr)
	target := strings.TrimPrefix(e.url, "https://")
	p.target.Store(&target)
	ctx := context.Background()
	r := e.router(t, "edge-1")
	k := e.key(t, r.ID, 0)

	res, err := enroll.Enroll(ctx, k.Key, api.KindRouter, enroll.Options{Timeout: 10 * time.Second, RetryFor: 30 * time.Second})
	if err != nil {
		t.Fatalf("enrolment after a lost reply: %v", err)
	}
	if p.conns.Load() < 2 || p.lost.Load() == 0 {
		t.Fatalf("the proxy lost no reply (%d connections, %d bytes lost): the test did not test a retry", p.conns.Load(), p.lost.Load())
	}
	if res.Config.ID != r.ID {
		t.Fatalf("enrolled as %q, want router %q", res.Config.ID, r.ID)
	}
	if !strings.Contains(e.logs.String(), "enrolment retried") {
		t.Fatalf("the controller did not see a retry of a consumed key; log:\n%s", e.logs.String())
	}
	if got := e.keyState(t, k.ID); got != api.KeyUsed {
		t.Fatalf("key state %q, want used", got)
	}

	// Another public key with the same key: refused, as for any used key.
	_, err = enroll.Enroll(ctx, k.Key, api.KindRouter, enroll.Options{RetryFor: -1})
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("same key, another public key: %v, want already used", err)
	}
}

// TestEnrolmentRetrySameCSR: at the API, a used key answers the CSR that used it again (the
// same public key, within the retry window) and refuses any other; a wrong secret stays an
// unknown key.
func TestEnrolmentRetrySameCSR(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	r := e.router(t, "edge-1")
	k := e.key(t, r.ID, 0)
	csrFor := func() string {
		priv, err := pki.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := pki.NewCSR(priv, "router")
		if err != nil {
			t.Fatal(err)
		}
		return string(csr)
	}
	anon, err := apiclient.New(e.url, "", e.c.CA.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	defer anon.CloseIdleConnections()
	csr := csrFor()
	first, err := anon.Enroll(ctx, api.EnrollRequest{Key: k.Key, CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	again, err := anon.Enroll(ctx, api.EnrollRequest{Key: k.Key, CSR: csr})
	if err != nil {
		t.Fatalf("retry with the same CSR: %v", err)
	}
	if again.Config.ID != first.Config.ID {
		t.Fatalf("retry enrolled %q, first %q", again.Config.ID, first.Config.ID)
	}
	_, err = anon.Enroll(ctx, api.EnrollRequest{Key: k.Key, CSR: csrFor()})
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Problem.Type != api.ProblemKeyUsed {
		t.Fatalf("same key, another CSR: %v, want 409 %s", err, api.ProblemKeyUsed)
	}
}

// TestEnrolmentReplyLostThenRestart: the enrolling process gives up after the lost reply (a
// reboot, a unit that timed out) and runs again later with the same key: it still holds the
// private key of the first attempt in its state directory, so the controller answers it as
// the same enrolment, and once enrolled the pending key is gone.
func TestEnrolmentReplyLostThenRestart(t *testing.T) {
	p := newReplyLosingProxy(t)
	e := startAdvertising(t, p.addr)
	target := strings.TrimPrefix(e.url, "https://")
	p.target.Store(&target)
	ctx := context.Background()
	r := e.router(t, "edge-1")
	k := e.key(t, r.ID, 0)
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := enroll.Router(ctx, k.Key, dir, false, enroll.Options{Timeout: 10 * time.Second, RetryFor: -1}); err == nil {
		t.Fatal("the first attempt succeeded: the proxy lost no reply")
	}
	// The controller handles the request after the proxy dropped the client.
	for deadline := time.Now().Add(10 * time.Second); e.keyState(t, k.ID) != api.KeyUsed; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the key was never used: the controller did not handle the first attempt")
		}
	}
	cfg, err := enroll.Router(ctx, k.Key, dir, false, enroll.Options{Timeout: 10 * time.Second, RetryFor: -1})
	if err != nil {
		t.Fatalf("the run after a restart: %v", err)
	}
	if cfg.ID != r.ID {
		t.Fatalf("enrolled %q, want %q", cfg.ID, r.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, "enroll-key.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pending enrolment key left behind: %v", err)
	}
}
