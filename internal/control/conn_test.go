package control

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func pipe(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return NewConn(a), NewConn(b)
}

func TestRoundTrip(t *testing.T) {
	a, b := pipe(t)
	hello := Hello{Protocol: ProtocolVersion, Version: "v1.2.3", FailureDomain: "aws/eu-west-1/a",
		Image: &Attestation{RouterVersion: "v1.2.3", HardeningProfile: "cis-l1", BaseImage: "debian-12",
			BuildTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}}
	go func() {
		if err := a.Send(TypeHello, 0, hello); err != nil {
			t.Error(err)
		}
	}()
	env, err := b.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != TypeHello {
		t.Fatalf("type %q", env.Type)
	}
	var got Hello
	if err := env.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Version != hello.Version || got.FailureDomain != hello.FailureDomain || got.Image == nil ||
		!got.Image.BuildTime.Equal(hello.Image.BuildTime) || got.Image.HardeningProfile != "cis-l1" {
		t.Fatalf("got %+v", got)
	}
}

func TestConcurrentSendsKeepFramesWhole(t *testing.T) {
	a, b := pipe(t)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Send(TypeRenew, uint64(i+1), Renew{CSR: strings.Repeat("x", 1000+i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	seen := map[uint64]bool{}
	for range n {
		env, err := b.Receive()
		if err != nil {
			t.Fatal(err)
		}
		var r Renew
		if err := env.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if len(r.CSR) != 1000+int(env.ID)-1 {
			t.Fatalf("frame %d has body of %d bytes", env.ID, len(r.CSR))
		}
		seen[env.ID] = true
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("saw %d distinct frames, want %d", len(seen), n)
	}
}

func TestReceiveRejectsBadFrames(t *testing.T) {
	frame := func(body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		return append(b, body...)
	}
	tests := []struct {
		name string
		wire []byte
		want string
	}{
		{"oversized length", binary.BigEndian.AppendUint32(nil, MaxFrameSize+1), "maximum size"},
		{"truncated body", frame(`{"type":"hello"}`)[:10], "truncated frame"},
		{"not json", frame(`hello`), "malformed frame"},
		{"no type", frame(`{"body":{}}`), "without a message type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer b.Close()
			go func() { a.Write(tt.wire); a.Close() }()
			_, err := NewConn(b).Receive()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestSendRefusesOversizedMessage(t *testing.T) {
	a, _ := pipe(t)
	err := a.Send(TypeRenew, 1, Renew{CSR: strings.Repeat("x", MaxFrameSize)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeNamesTheMessage(t *testing.T) {
	var h Hello
	err := Envelope{Type: TypeHello, Body: []byte(`{"protocol":"one"}`)}.Decode(&h)
	if err == nil || !strings.Contains(err.Error(), "malformed hello") {
		t.Fatalf("err = %v", err)
	}
	if err := (Envelope{Type: TypeWelcome}).Decode(&h); err == nil || !strings.Contains(err.Error(), "welcome message has no body") {
		t.Fatalf("err = %v", err)
	}
}

func TestServiceHasPort(t *testing.T) {
	s := Service{Port: 5432, PortRanges: []PortRange{{From: 8000, To: 8010}, {From: 9000, To: 9000}}}
	for port, want := range map[int]bool{5432: true, 8000: true, 8005: true, 8010: true, 9000: true, 5433: false, 7999: false, 8011: false, 0: false} {
		if got := s.HasPort(port); got != want {
			t.Errorf("HasPort(%d) = %v, want %v", port, got, want)
		}
	}
}
