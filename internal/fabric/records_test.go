package fabric_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
)

// TestRecordsInterop: either end may carry its records with tlsrecord or with crypto/tls's
// own: all four pairings link and carry a stream both ways (the wire is RFC 8446 either way).
func TestRecordsInterop(t *testing.T) {
	p := fabrictest.New(t)
	both := []fabric.Records{fabric.RecordsTLSRecord, fabric.RecordsCryptoTLS}
	for _, hubRec := range both {
		for _, dialRec := range both {
			t.Run(string(dialRec)+" to "+string(hubRec), func(t *testing.T) {
				h := listenHub(t, fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "hub1"), Records: hubRec})
				router, err := dial(t, h.addr, fabric.LinkConfig{Credentials: p.Credentials(api.KindRouter, "r1"), Records: dialRec})
				if err != nil {
					t.Fatal(err)
				}
				var hub *fabric.Link
				select {
				case hub = <-h.links:
				case err := <-h.errs:
					t.Fatal(err)
				}
				if got := hub.Records(); got != hubRec {
					t.Fatalf("hub's link carried by %s, want %s", got, hubRec)
				}
				if got := router.Records(); got != dialRec {
					t.Fatalf("router's link carried by %s, want %s", got, dialRec)
				}
				go func() {
					s, err := router.AcceptStream()
					if err != nil {
						return
					}
					fabric.ReadRequest(s)
					fabric.WriteResponse(s, &fabric.Response{Code: fabric.OK})
					io.Copy(s, s)
					s.Close()
				}()
				s, _, err := hub.Open(context.Background(), &fabric.Request{Op: fabric.OpDial, Target: "echo:1"})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				msg := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // records of every size, several frames
				go s.Write(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("echo: %v, equal=%v", err, bytes.Equal(got, msg))
				}
			})
		}
	}
}

// TestRecordsConfig: the default is tlsrecord, RecordsEnv sets it for links that leave
// Records empty, and a value that is neither is refused with the two that are.
func TestRecordsConfig(t *testing.T) {
	p := fabrictest.New(t)
	h := listenHub(t, fabric.LinkConfig{Credentials: p.Credentials(api.KindHub, "hub1")})
	for _, tc := range []struct {
		name, env string
		rec       fabric.Records
		want      fabric.Records
		err       string
	}{
		{name: "default", want: fabric.RecordsTLSRecord},
		{name: "environment", env: "crypto-tls", want: fabric.RecordsCryptoTLS},
		{name: "config over environment", env: "crypto-tls", rec: fabric.RecordsTLSRecord, want: fabric.RecordsTLSRecord},
		{name: "bad config", rec: "openssl", err: `"openssl": want "tlsrecord" or "crypto-tls"`},
		{name: "bad environment", env: "fast", err: fabric.RecordsEnv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(fabric.RecordsEnv, tc.env)
			l, err := dial(t, h.addr, fabric.LinkConfig{Credentials: p.Credentials(api.KindRouter, "r1"), Records: tc.rec})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("dial: %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Records(); got != tc.want {
				t.Fatalf("records %s, want %s", got, tc.want)
			}
		})
	}
}
