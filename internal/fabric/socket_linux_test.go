package fabric

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTuneTCP: a link's TCP connection gives up on unacknowledged data at the link timeout and,
// on a kernel that has the option, retransmits at least every second.
func TestTuneTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tuneTCP(c, 7*time.Second)
	get := func(opt int) (v int, err error) {
		onSocket(c, func(fd int) { v, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, opt) })
		return v, err
	}
	if v, err := get(unix.TCP_USER_TIMEOUT); err != nil || v != 7000 {
		t.Errorf("TCP_USER_TIMEOUT = %d ms (%v), want 7000", v, err)
	}
	v, err := get(unix.TCP_RTO_MAX_MS)
	if err != nil {
		t.Logf("this kernel has no TCP_RTO_MAX_MS (%v): links keep the default retransmit backoff", err)
		return
	}
	if v != int(maxRetransmitInterval/time.Millisecond) {
		t.Errorf("TCP_RTO_MAX_MS = %d, want %d", v, maxRetransmitInterval/time.Millisecond)
	}
}
