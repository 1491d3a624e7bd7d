package control

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
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

// bigSnapshot is a hub snapshot of about size bytes on the wire.
func bigSnapshot(size int) HubSnapshot {
	var s HubSnapshot
	for i := 0; size > 0; i++ {
		svc := HubService{Service: Service{ID: fmt.Sprintf("svc-%07d", i), Name: fmt.Sprintf("service-%07d", i),
			Address: fmt.Sprintf("host-%07d.customer.example", i), Port: 5432, Protocol: "tcp"}, RouterRoles: []string{"edge", "team-" + strconv.Itoa(i%100)}}
		s.Services = append(s.Services, svc)
		size -= 150
	}
	return s
}

// TestChunkedMessages: a 20 MB snapshot reaches a peer that announced a larger limit, in chunks
// between which heartbeats still pass (TestChunkDeadlineRenewed: every chunk renews the read
// deadline).
func TestChunkedMessages(t *testing.T) {
	a, b := pipe(t)
	a.SetPeerMaxMessage(b.MaxMessage())
	snap := bigSnapshot(20 << 20)
	sent := make(chan error, 1)
	go func() { sent <- a.Send(TypeHubSnapshot, 0, snap) }()
	go func() {
		for range 5 {
			if err := a.Send(TypeHeartbeatAck, 0, HeartbeatAck{}); err != nil {
				t.Error(err)
			}
		}
	}()
	b.SetReadDeadline(time.Now().Add(30 * time.Second)) // encoding 20 MB takes seconds under -race on a loaded machine
	acks := 0
	var got HubSnapshot
	for got.Services == nil {
		env, err := b.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch env.Type {
		case TypeHeartbeatAck:
			acks++
		case TypeHubSnapshot:
			if len(env.Body) < 20<<20 {
				t.Fatalf("snapshot of %d bytes", len(env.Body))
			}
			if err := env.Decode(&got); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected %s", env.Type)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for acks < 5 {
		if _, err := b.Receive(); err != nil {
			t.Fatal(err)
		}
		acks++
	}
	if len(got.Services) != len(snap.Services) || got.Services[len(got.Services)-1].Name != snap.Services[len(snap.Services)-1].Name {
		t.Fatalf("got %d services, sent %d", len(got.Services), len(snap.Services))
	}
}

// TestChunkDeadlineRenewed: a message arriving slowly, chunk by chunk, over more than the read
// deadline is received.
func TestChunkDeadlineRenewed(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	frame, _ := json.Marshal(Envelope{Type: TypeAssignment, Body: []byte(`{"services":[]}`)})
	go func() {
		for i, piece := range [][]byte{frame[:5], frame[5:10], frame[10:]} {
			time.Sleep(150 * time.Millisecond)
			flags := uint32(flagChunk)
			if i == 2 {
				flags |= flagLast
			}
			a.Write(append(binary.BigEndian.AppendUint32(nil, flags|uint32(len(piece))), piece...))
		}
	}()
	c := NewConn(b)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	env, err := c.Receive()
	if err != nil || env.Type != TypeAssignment {
		t.Fatalf("%v, %v", env, err)
	}
}

// TestTooLargeLoggedOnBothSides: a message above the peer's limit is refused by the sender with
// its size, and the peer gets an undeliverable notice naming it; a peer that predates chunking
// (no limit announced) gets nothing above one frame.
func TestTooLargeLoggedOnBothSides(t *testing.T) {
	for name, peerMax := range map[string]int64{"peer without chunking": 0, "peer with a 4 MiB limit": 4 << 20} {
		t.Run(name, func(t *testing.T) {
			a, b := pipe(t)
			a.SetPeerMaxMessage(peerMax)
			got := make(chan Envelope, 1)
			go func() {
				env, err := b.Receive()
				if err != nil {
					t.Error(err)
				}
				got <- env
			}()
			err := a.Send(TypeAssignment, 0, Assignment{Services: []Service{}})
			if err != nil {
				t.Fatalf("a small message: %v", err)
			}
			<-got
			go func() {
				env, _ := b.Receive()
				got <- env
			}()
			snap := bigSnapshot(5 << 20)
			err = a.Send(TypeHubSnapshot, 0, snap)
			var tl *TooLargeError
			if !errors.As(err, &tl) || !errors.Is(err, ErrFrameTooLarge) || tl.Size <= 4<<20 || tl.Limit != max(peerMax, MaxFrameSize) {
				t.Fatalf("err = %v", err)
			}
			env := <-got
			var u Undeliverable
			if env.Type != TypeUndeliverable || env.Decode(&u) != nil || u.Type != TypeHubSnapshot || u.Size != tl.Size || u.Limit != tl.Limit {
				t.Fatalf("peer got %s %s", env.Type, env.Body)
			}
		})
	}
}

// TestReceiveBoundsReassembly: a peer that sends more chunks than this side accepts is cut off
// once the total passes the limit, before it is buffered.
func TestReceiveBoundsReassembly(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() {
		piece := make([]byte, chunkSize)
		for {
			if _, err := a.Write(append(binary.BigEndian.AppendUint32(nil, flagChunk|uint32(len(piece))), piece...)); err != nil {
				return
			}
		}
	}()
	c := NewConn(b)
	c.SetMaxMessage(1 << 20)
	_, err := c.Receive()
	if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "more than the 1048576 this side accepts") {
		t.Fatalf("err = %v", err)
	}
}
