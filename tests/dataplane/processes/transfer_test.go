package processes_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// TestBytesRoundTrip: messages of 1 byte to 300 kB echo back through controller hub → router
// process → target, the service named by its customer FQDN; a half-close reaches the target,
// whose end of stream comes back.
func TestBytesRoundTrip(t *testing.T) {
	s := newSite(t, stack.Echo, true)
	svcs, err := s.client.Services(context.Background())
	if err != nil || len(svcs) != 1 || svcs[0].Name != "db" || svcs[0].Address != serviceName {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	stack.CheckEcho(t, stack.Dial(t, s.client, s.target))
}

// TestGiBTransfer: 1 GiB of random bytes arrives at the target with the same SHA-256.
func TestGiBTransfer(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	s := newSite(t, stack.Digest, true)
	d := stack.SendDigested(t, stack.Dial(t, s.client, s.target), size)
	t.Logf("%d MiB in %v (%.2f GB/s; test, controller and router processes share 2 cores)", size>>20, d.Round(time.Millisecond), float64(size)/d.Seconds()/1e9)
}

// TestThousandConcurrentStreams: 1,000 streams open at once, each echoing 16 KiB of its own
// content, all complete intact.
func TestThousandConcurrentStreams(t *testing.T) {
	s := newSite(t, stack.Echo, true)
	const streams, size = 1000, 16 << 10
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	opened := make(chan struct{}, streams)
	release := make(chan struct{})
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				conn, err := s.client.Dial(ctx, s.target)
				if err != nil {
					return err
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(60 * time.Second))
				opened <- struct{}{}
				<-release // every stream is open at the same time
				msg := bytes.Repeat([]byte{byte(i)}, size)
				copy(msg, fmt.Sprintf("stream %d", i))
				if err := echoOnce(conn, msg); err != nil {
					return fmt.Errorf("stream %d: %w", i, err)
				}
				return nil
			}()
		}()
	}
	for range streams {
		select {
		case <-opened:
		case err := <-errs:
			close(release)
			t.Fatalf("before all streams were open: %v", err)
		}
	}
	openAll := time.Since(start)
	// The router counts a stream once the client's last handshake message arrived, just after
	// the client's Dial returned.
	harness.WaitFor(t, 30*time.Second, "router and hub count every stream", func() bool {
		return s.router.Metric("ztna_router_streams_active") == streams && s.c.Metric("ztna_hub_streams_active") == streams
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d streams opened concurrently in %v, all echoed intact after %v", streams, openAll.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
