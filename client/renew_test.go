package client_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/client"
	"github.com/ztna/ztna/client/clienttest"
	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/internal/pki"
)

// TestRenewalKeepsDialing runs a client whose certificates live 2 s through several renewals:
// every dial succeeds, a stream opened before the first renewal still carries data after the
// enrolled certificate expired, the link to the hub is never re-established, and the identity
// file is rewritten atomically with a new key each time. No key ever appears in a log.
func TestRenewalKeepsDialing(t *testing.T) {
	const lifetime = 2 * time.Second
	n := clienttest.Start(t, lifetime)
	path, ident := n.Enrol(t, "app")
	enrolled, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}

	clientLogs := &logging.Buffer{}
	log := slog.New(slog.NewJSONHandler(clientLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	id, err := client.LoadIdentity(path, client.IdentityOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := id.Config()
	cfg.Logger = log
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Readers of the identity file see a complete identity at every moment.
	keys := map[string]bool{enrolled.Key: true}
	var keysMu sync.Mutex
	readerDone := make(chan error, 1)
	go func() {
		readerDone <- func() error {
			for ctx.Err() == nil {
				f, err := enroll.LoadIdentity(path)
				if err != nil {
					return err
				}
				if _, err := f.TLSCertificate(); err != nil {
					return err
				}
				keysMu.Lock()
				keys[f.Key] = true
				keysMu.Unlock()
				time.Sleep(time.Millisecond)
			}
			return nil
		}()
	}()

	long, err := c.Dial(ctx, n.Target)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	renewDone := make(chan error, 1)
	go func() { renewDone <- id.KeepRenewed(ctx) }()

	begin := time.Now()
	dials := 0
	// Until the enrolled certificate has expired and three renewals have happened.
	expired := func() bool { return time.Now().After(mustLeaf(t, enrolled.Cert).NotAfter.Add(100 * time.Millisecond)) }
	renewals := func() int { return strings.Count(clientLogs.String(), `"msg":"certificate renewed"`) }
	for !expired() || renewals() < 3 {
		if time.Since(begin) > 5*lifetime {
			t.Fatalf("%d renewals in %v with %v certificates, want at least 3\n%s", renewals(), time.Since(begin), lifetime, clientLogs)
		}
		if err := echo(t, c, n.Target); err != nil {
			t.Fatalf("dial %d after %v (certificate expires %v): %v", dials, time.Since(begin), time.Until(id.Certificate().NotAfter), err)
		}
		dials++
		if dials%20 == 0 {
			if err := echoOn(long, "still here"); err != nil {
				t.Fatalf("the stream opened before any renewal broke after %v: %v", time.Since(begin), err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := echoOn(long, "after expiry"); err != nil {
		t.Fatalf("the stream opened with the enrolled certificate broke: %v", err)
	}
	cancel()
	if err := <-renewDone; err != nil {
		t.Fatalf("KeepRenewed: %v", err)
	}
	if err := <-readerDone; err != nil {
		t.Fatalf("a reader saw a broken identity file: %v", err)
	}

	if links := strings.Count(clientLogs.String(), `"msg":"linked to hub"`); links != 1 {
		t.Fatalf("the client linked to the hub %d times, want once (renewal must not drop the link)", links)
	}
	t.Logf("%d dials in %v, none failed; %d renewals; the link and a stream stayed up", dials, time.Since(begin), renewals())

	final, err := enroll.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, %v", fi.Mode().Perm(), err)
	}
	leaf := mustLeaf(t, final.Cert)
	if final.Config.ID != ident.ID || !leaf.Equal(id.Certificate()) || final.Config.CertExpiresAt.Compare(leaf.NotAfter) != 0 {
		t.Fatalf("identity file holds %s, certificate %v, want the client's current one for %s", final.Config.ID, leaf.SerialNumber, ident.ID)
	}
	if len(keys) < 3 {
		t.Fatalf("the file held %d different keys, want a new key per renewal", len(keys))
	}

	// No private key, in whole or in part, is logged by the client or the controller.
	logs := clientLogs.String() + n.Logs.String()
	for key := range keys {
		block, _ := pem.Decode([]byte(key))
		for _, line := range strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "K", Bytes: block.Bytes})), "\n") {
			if len(line) > 20 && strings.Contains(logs, line) {
				t.Fatalf("a private key appears in the logs: %q", line)
			}
		}
	}
	if strings.Contains(logs, "PRIVATE KEY") {
		t.Fatal("the logs contain a PEM private key")
	}
}

// TestRenewalRefused: a deleted identity and an expired certificate cannot renew; the refusal
// says why and what to do, and the identity file is left as it was.
func TestRenewalRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		prepare  func(t *testing.T, n *clienttest.Network, id *api.Identity)
		problem  string
		sayings  []string
	}{
		{
			name: "deleted identity", lifetime: time.Minute,
			prepare: func(t *testing.T, n *clienttest.Network, id *api.Identity) {
				if err := n.API.DeleteIdentity(context.Background(), id.ID); err != nil {
					t.Fatal(err)
				}
			},
			problem: api.ProblemIdentityDeleted, sayings: []string{"was deleted", "create a new identity"},
		},
		{
			name: "expired certificate", lifetime: 300 * time.Millisecond,
			prepare: func(t *testing.T, n *clienttest.Network, id *api.Identity) { time.Sleep(400 * time.Millisecond) },
			problem: api.ProblemCertExpired, sayings: []string{"expired at", "cannot be renewed", "enrol again with a new enrolment token", "ztna identity enroll"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := clienttest.Start(t, tc.lifetime)
			path, ident := n.Enrol(t, "app")
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := enroll.LoadIdentity(path)
			if err != nil {
				t.Fatal(err)
			}
			cur, err := f.TLSCertificate()
			if err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, n, ident)

			_, err = enroll.RenewIdentity(context.Background(), f, cur, enroll.Options{})
			var refused *enroll.RefusedError
			if !errors.As(err, &refused) || refused.Problem.Type != tc.problem {
				t.Fatalf("renewal: %v, want a refusal of type %s", err, tc.problem)
			}
			for _, s := range tc.sayings {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("refusal %q does not say %q", err, s)
				}
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
				t.Fatalf("the identity file changed after a refused renewal (%v)", err)
			}
		})
	}
}

// TestExpiredIdentityIsNotLoaded: the SDK refuses an identity file whose certificate expired
// and says what to do.
func TestExpiredIdentityIsNotLoaded(t *testing.T) {
	n := clienttest.Start(t, 100*time.Millisecond)
	path, _ := n.Enrol(t, "app")
	time.Sleep(200 * time.Millisecond)
	_, err := client.LoadIdentity(path, client.IdentityOptions{})
	if err == nil || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), "enrol again with a new enrolment token") {
		t.Fatalf("loading an expired identity: %v", err)
	}
}

// TestKeepRenewedGivesUpWhenRefused: a refusal is final, so KeepRenewed does not retry it; it
// returns the refusal and logs it.
func TestKeepRenewedGivesUpWhenRefused(t *testing.T) {
	// 10 s certificates are due for renewal at once: NotBefore is backdated by a minute.
	n := clienttest.Start(t, 10*time.Second)
	path, ident := n.Enrol(t, "app")
	logs := &logging.Buffer{}
	id, err := client.LoadIdentity(path, client.IdentityOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.API.DeleteIdentity(context.Background(), ident.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var refused *enroll.RefusedError
	if err := id.KeepRenewed(context.Background()); !errors.As(err, &refused) || refused.Problem.Type != api.ProblemIdentityDeleted {
		t.Fatalf("KeepRenewed: %v, want it to give up on the refusal", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("KeepRenewed took %v to give up", d)
	}
	if !strings.Contains(logs.String(), "certificate renewal refused") || strings.Contains(logs.String(), "retrying") {
		t.Fatalf("log:\n%s", logs)
	}
}

func echoOn(c io.ReadWriter, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo mismatch: " + string(got))
	}
	return nil
}

func mustLeaf(t *testing.T, chainPEM string) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertPEM([]byte(chainPEM))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRenewalRetriesWhileTheControllerIsDown: with the controller down when renewal is due,
// the client keeps dialing through the hub, retries with backoff, and renews once the
// controller is back, before its certificate expires.
func TestRenewalRetriesWhileTheControllerIsDown(t *testing.T) {
	n := clienttest.Start(t, 4*time.Second)
	path, _ := n.Enrol(t, "app")
	logs := &logging.Buffer{}
	id, err := client.LoadIdentity(path, client.IdentityOptions{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	enrolled := id.Certificate()
	c, err := client.New(id.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n.StopController(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	renewDone := make(chan error, 1)
	go func() { renewDone <- id.KeepRenewed(ctx) }() // due at once: loaded from a file
	begin := time.Now()
	outage := time.Until(enrolled.NotAfter) / 3 // NotAfter has whole seconds: 3 to 4 s away
	for time.Since(begin) < outage {
		if err := echo(t, c, n.Target); err != nil {
			t.Fatalf("dial with the controller down: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if id.Certificate() != enrolled {
		t.Fatal("renewed while the controller was down?")
	}
	if retries := strings.Count(logs.String(), `"msg":"certificate renewal failed; retrying"`); retries < 2 {
		t.Fatalf("%d retries in %v, want several\n%s", retries, outage, logs)
	}
	n.StartController(t)
	for id.Certificate() == enrolled {
		if time.Now().After(enrolled.NotAfter) {
			t.Fatalf("not renewed before expiry after the controller came back\n%s", logs)
		}
		if err := echo(t, c, n.Target); err != nil {
			t.Fatalf("dial: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := echo(t, c, n.Target); err != nil {
		t.Fatalf("dial after renewal: %v", err)
	}
	cancel()
	if err := <-renewDone; err != nil {
		t.Fatal(err)
	}
	if f, err := enroll.LoadIdentity(path); err != nil || !mustLeaf(t, f.Cert).Equal(id.Certificate()) {
		t.Fatalf("identity file not rewritten after the late renewal: %v", err)
	}
}
