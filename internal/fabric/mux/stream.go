package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ztna/ztna/internal/bufpool"
)

var errDeadlineExceeded = os.ErrDeadlineExceeded

// ErrPeerClosed is what Write returns after the peer closed the stream.
var ErrPeerClosed = errors.New("mux: stream closed by the peer")

// Stream is one bidirectional byte stream of a session. It is a net.Conn. Close ends it in both
// directions: the peer reads what was sent and then io.EOF, and its writes fail.
type Stream struct {
	s      *Session
	id     uint32
	byPeer bool // the peer opened it: it counts against Config.MaxStreams
	// Under the session's mu: it counts against Config.MaxSetups until SetUp, and against
	// Config.SharedStreams until LeaveQuota or its end.
	inSetup, inQuota bool

	mu sync.Mutex
	// Receive side.
	queue    []chunk // received, not yet consumed
	buffered int
	window   int // bytes the peer may still send
	unacked  int // consumed, not yet returned to the peer as credit
	maxWin   int // this stream's window now: the session's Window, grown by autotune
	extra    int // what maxWin grew by, counted in the session's grown
	charge   int // with a budget: what window+buffered hold beyond InitialWindow (session's charged)
	// The autotuning epoch: when it began and what the reader consumed since.
	epochStart time.Time
	epochRead  int
	finIn      bool
	readErr    error // the session ended
	readable   chan struct{}
	// Send side.
	credit   int // bytes we may still send
	closed   bool
	writeErr error // the session ended or the peer closed
	writable chan struct{}

	wmu    sync.Mutex // serialises Write and Close's fin
	opened bool       // under wmu: the peer knows the stream

	rdl, wdl deadline
}

type chunk struct {
	buf  *[]byte // from bufpool
	data []byte
}

func newStream(s *Session, id uint32, byPeer bool) *Stream {
	if s.cfg.InitialWindow == 0 { // unbudgeted (newSession sets it; some tests build sessions by hand)
		s.cfg.InitialWindow = s.cfg.Window
	}
	return &Stream{
		s: s, id: id, opened: byPeer, byPeer: byPeer,
		window: s.cfg.InitialWindow, credit: s.cfg.InitialWindow, maxWin: s.cfg.Window, epochStart: time.Now(),
		readable: make(chan struct{}, 1), writable: make(chan struct{}, 1),
		rdl: newDeadline(), wdl: newDeadline(),
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// received queues a payload the session read for this stream.
func (st *Stream) received(buf *[]byte, n int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed || st.finIn {
		bufpool.Put(buf)
		return nil
	}
	if n > st.window {
		bufpool.Put(buf)
		return errors.New("mux: peer sent beyond the stream's window")
	}
	st.window -= n
	st.queueData(buf, n)
	if st.buffered == 0 {
		st.s.active.Add(1)
	}
	st.buffered += n
	st.s.buffered.Add(int64(n))
	notify(st.readable)
	return nil
}

// coalesceLimit: a payload up to this size is copied into the room left in the buffer of the
// last one queued, if it fits, rather than held in a buffer of its own. Buffers come in
// power-of-two classes of at least 4 KiB, so a peer sending one-byte frames to a stalled
// reader would otherwise pin 4 KiB per byte of window; this way what a stream holds stays
// under twice what it buffered. Large payloads, the bulk path, are never copied.
const coalesceLimit = 16 << 10

// queueData, under mu, appends n bytes received into buf to the queue.
func (st *Stream) queueData(buf *[]byte, n int) {
	if k := len(st.queue); k > 0 && n <= coalesceLimit {
		last := &st.queue[k-1]
		if cap(last.data)-len(last.data) >= n {
			last.data = append(last.data, (*buf)[:n]...)
			bufpool.Put(buf)
			return
		}
	}
	st.queue = append(st.queue, chunk{buf: buf, data: (*buf)[:n]})
}

func (st *Stream) credited(n int) {
	st.mu.Lock()
	st.credit += n
	st.mu.Unlock()
	notify(st.writable)
}

func (st *Stream) finReceived() {
	st.mu.Lock()
	st.finIn = true
	st.releaseGrowth()
	st.releaseCharge(max(0, st.buffered-st.s.cfg.InitialWindow)) // the peer sends no more
	if st.writeErr == nil {
		st.writeErr = ErrPeerClosed
	}
	done := st.closed
	st.mu.Unlock()
	notify(st.readable)
	notify(st.writable)
	if done {
		st.forget()
	}
}

func (st *Stream) sessionEnded(err error) {
	st.mu.Lock()
	if st.readErr == nil {
		st.readErr = err
	}
	if st.writeErr == nil {
		st.writeErr = err
	}
	st.mu.Unlock()
	notify(st.readable)
	notify(st.writable)
}

// forget removes the stream from its session once both ends have closed it.
func (st *Stream) forget() {
	st.s.mu.Lock()
	if st.s.streams[st.id] == st {
		delete(st.s.streams, st.id)
		if st.byPeer {
			st.s.byPeer--
		}
		st.leaveQuota()
	}
	st.s.mu.Unlock()
}

// waitReadable returns nil when data, the end of stream or an error is there to report.
func (st *Stream) waitReadable() error {
	select {
	case <-st.readable:
		return nil
	case <-st.rdl.wait():
		return ErrTimeout
	}
}

// readState, under mu, says whether there is nothing to read and why (nil: wait for data).
func (st *Stream) readState() (done bool, err error) {
	switch {
	case st.closed:
		return true, io.ErrClosedPipe
	case st.buffered > 0:
		return false, nil
	case st.finIn:
		return true, io.EOF
	case st.readErr != nil:
		return true, st.readErr
	}
	return false, nil
}

// Read reads received data; io.EOF once the peer closed and everything it sent was read.
func (st *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		st.mu.Lock()
		if done, err := st.readState(); done {
			st.mu.Unlock()
			return 0, err
		}
		if st.buffered == 0 {
			st.mu.Unlock()
			if err := st.waitReadable(); err != nil {
				return 0, err
			}
			continue
		}
		n := 0
		for n < len(p) && len(st.queue) > 0 {
			c := &st.queue[0]
			k := copy(p[n:], c.data)
			n += k
			c.data = c.data[k:]
			if len(c.data) == 0 {
				bufpool.Put(c.buf)
				st.queue[0] = chunk{}
				st.queue = st.queue[1:]
			}
		}
		st.buffered -= n
		st.s.buffered.Add(-int64(n))
		if st.buffered == 0 {
			st.s.active.Add(-1)
		}
		credit := st.consumed(n)
		st.mu.Unlock()
		st.sendCredit(credit)
		return n, nil
	}
}

// WriteTo hands received payloads to w as they arrive, without copying them, until the peer
// closes the stream (then it returns nil). w must not keep the slices it is given.
func (st *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		st.mu.Lock()
		if done, err := st.readState(); done {
			st.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		if st.buffered == 0 {
			st.mu.Unlock()
			if err := st.waitReadable(); err != nil {
				return total, err
			}
			continue
		}
		queue, taken := st.queue, st.buffered
		st.queue = nil
		st.buffered = 0
		st.s.active.Add(-1)
		st.mu.Unlock()

		n := 0
		var err error
		for i, c := range queue {
			if err == nil {
				var k int
				k, err = w.Write(c.data)
				n += k
			}
			bufpool.Put(c.buf)
			queue[i] = chunk{}
		}
		// Only now are the buffers back, and the window (see consumed) may be granted again.
		st.s.buffered.Add(-int64(taken))
		total += int64(n)
		st.mu.Lock()
		credit := st.consumed(n)
		st.mu.Unlock()
		st.sendCredit(credit)
		if err != nil {
			return total, err
		}
	}
}

// consumed, under mu, notes n bytes taken by the reader and returns the credit to send. Credit
// tops the peer's remaining window up to the session's current target once it has fallen by a
// quarter, so a busy stream gets a credit frame per quarter window and a stream of small
// messages almost none; credit not yet returned waits in unacked.
func (st *Stream) consumed(n int) int {
	if st.s.budgeted {
		return st.consumedBudgeted(n)
	}
	st.unacked += n
	st.epochRead += n
	if st.closed || st.finIn {
		return 0
	}
	st.autotune()
	target := st.s.windowTarget(st.maxWin)
	want := target - st.window
	if want < target/4 || st.unacked == 0 {
		return 0
	}
	c := min(want, st.unacked, maxLength) // what one credit frame can carry
	st.unacked -= c
	st.window += c
	return c
}

// consumedBudgeted is consumed with a budget (Config.InitialWindow): credit tops what the
// stream holds — the peer's remaining window plus data not yet read — up to the stream's share
// of the session window once that has fallen by a quarter; what the stream would hold beyond
// InitialWindow is taken from the session window first, and only what it got is granted. The
// initial window itself is always renewed, so every stream that is read keeps moving however
// many others stall with their windows full.
func (st *Stream) consumedBudgeted(n int) int {
	st.epochRead += n
	w0 := st.s.cfg.InitialWindow
	held := st.window + st.buffered
	if st.closed || st.finIn {
		st.releaseCharge(max(0, st.buffered-w0))
		return 0
	}
	st.autotune()
	target := st.s.budgetTarget(st.maxWin, st.charge > 0)
	grant := 0
	if want := target - held; want >= target/4 {
		grant = min(want, maxLength) // what one credit frame can carry
	}
	if need := max(0, held+grant-w0); need > st.charge {
		got := int(st.s.charge(int64(need - st.charge)))
		grant -= need - st.charge - got
		st.setCharge(st.charge + got)
	}
	if grant < w0/4 { // the session window is spent: wait until a quarter of w0 is free
		grant = 0
	}
	st.releaseCharge(max(0, held+grant-w0))
	st.window += grant
	return grant
}

// setCharge, under mu, records what the stream holds of the session window (already taken
// from or given back to it), counting the streams that hold some.
func (st *Stream) setCharge(c int) {
	switch {
	case st.charge == 0 && c > 0:
		st.s.charging.Add(1)
	case st.charge > 0 && c == 0:
		st.s.charging.Add(-1)
	}
	st.charge = c
}

// releaseCharge, under mu, gives what the stream holds of the session window beyond to back.
func (st *Stream) releaseCharge(to int) {
	if to < st.charge {
		st.s.charged.Add(-int64(st.charge - to))
		st.setCharge(to)
	}
}

// autotune, under mu, doubles the stream's window when its reader consumed half of it in less
// than two round trips of the link: then the round trip, not the reader, limits the stream. The
// window added waits with the credit held back, to be granted as the session's share allows.
func (st *Stream) autotune() {
	cfg := &st.s.cfg
	if cfg.RTT == nil || st.maxWin >= cfg.MaxWindow || st.epochRead <= st.maxWin/2 {
		return
	}
	now := time.Now()
	rtt := cfg.RTT()
	if rtt > 0 && (cfg.WindowGoal == 0 || float64(st.maxWin)/rtt.Seconds() < cfg.WindowGoal) &&
		now.Sub(st.epochStart) < time.Duration(4*float64(rtt)*float64(st.epochRead)/float64(st.maxWin)) {
		grown := min(2*st.maxWin, cfg.MaxWindow)
		delta := int64(grown - st.maxWin)
		if st.s.grown.Add(delta) <= int64(cfg.MaxSessionWindow-cfg.SessionWindow) {
			if !st.s.budgeted { // with a budget, consumed tops the window up to its target
				st.unacked += grown - st.maxWin
			}
			st.extra += grown - st.maxWin
			st.maxWin = grown
			st.s.raiseSessionWindow(st.maxWin)
		} else { // the session's streams have grown all they may
			st.s.grown.Add(-delta)
		}
	}
	st.epochStart, st.epochRead = now, 0
}

// releaseGrowth, under mu, returns what the stream's window grew by to the session once the
// stream receives no more.
func (st *Stream) releaseGrowth() {
	if st.extra > 0 {
		st.s.grown.Add(-int64(st.extra))
		st.extra = 0
	}
}

func (st *Stream) sendCredit(n int) {
	if n > 0 {
		st.s.writeFrame(typeCredit, st.id, n, nil, nil)
	}
}

// Write sends p, in frames of at most the session's MaxFrame bytes, as fast as the peer's window
// allows.
func (st *Stream) Write(p []byte) (int, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	total := 0
	for len(p) > 0 {
		n, err := st.reserve(min(len(p), st.s.cfg.MaxFrame))
		if err != nil {
			return total, err
		}
		typ := byte(typeData)
		if !st.opened {
			typ = typeOpen
		}
		if err := st.s.writeFrame(typ, st.id, n, p[:n], st.wdl.wait()); err != nil {
			if err == ErrTimeout { // the frame never left: its window is still ours
				st.mu.Lock()
				st.credit += n
				st.mu.Unlock()
			}
			return total, err
		}
		st.opened = true
		total += n
		p = p[n:]
	}
	return total, nil
}

// AwaitCredit waits (bounded by the write deadline) until the peer's window has room and says
// how much, taking none of it: a writer that has its data still to read (from a socket) reads
// no more than it may send, rather than holding a buffer through the wait.
func (st *Stream) AwaitCredit() (int, error) { return st.waitCredit(0) }

// reserve waits until the peer's window has room and takes up to want (> 0) bytes of it.
func (st *Stream) reserve(want int) (int, error) { return st.waitCredit(want) }

// waitCredit waits until the peer's window has room, then takes up to take bytes of it and says
// how many; take 0 takes none and says how much there is.
func (st *Stream) waitCredit(take int) (int, error) {
	for {
		st.mu.Lock()
		switch {
		case st.closed:
			st.mu.Unlock()
			return 0, io.ErrClosedPipe
		case st.writeErr != nil:
			err := st.writeErr
			st.mu.Unlock()
			return 0, err
		case st.credit > 0:
			n := st.credit
			if take > 0 {
				n = min(n, take)
				st.credit -= n
			}
			st.mu.Unlock()
			if take == 0 {
				notify(st.writable) // the wake-up taken here is still due to a reserve
			}
			return n, nil
		}
		st.mu.Unlock()
		select {
		case <-st.writable:
		case <-st.wdl.wait():
			return 0, ErrTimeout
		}
	}
}

// Close ends the stream in both directions and drops what was received but not read.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.releaseGrowth()
	st.releaseCharge(0) // what arrives from now on is dropped
	for _, c := range st.queue {
		bufpool.Put(c.buf)
	}
	if st.buffered > 0 {
		st.s.active.Add(-1)
	}
	st.s.buffered.Add(-int64(st.buffered))
	st.queue, st.buffered = nil, 0
	peerDone := st.finIn || st.readErr != nil
	st.mu.Unlock()
	notify(st.readable)
	notify(st.writable)
	// Until the peer closes its end too the stream stays listed: it should not also keep its
	// deadline timers alive.
	st.rdl.set(time.Time{})
	st.wdl.set(time.Time{})

	st.wmu.Lock() // after any Write in progress, which now returns
	opened := st.opened
	st.wmu.Unlock()
	var err error
	if opened {
		err = st.s.writeFrame(typeFin, st.id, 0, nil, nil)
	}
	if !opened || peerDone || err != nil {
		st.forget()
	}
	return nil
}

// SetUp tells the session that the stream's setup is over (its handler has its request and
// answered it), so that it no longer counts against Config.MaxSetups. The session calls it
// when the handler returns; calling it again does nothing.
func (st *Stream) SetUp() {
	st.s.mu.Lock()
	if st.inSetup {
		st.inSetup = false
		st.s.setups--
	}
	st.s.mu.Unlock()
}

// LeaveQuota frees the stream's slot of Config.SharedStreams: a link's control stream, which
// every link has, should not count against what the peer's links share.
func (st *Stream) LeaveQuota() {
	st.s.mu.Lock()
	st.leaveQuota()
	st.s.mu.Unlock()
}

// leaveQuota is LeaveQuota under the session's mu.
func (st *Stream) leaveQuota() {
	if st.inQuota {
		st.inQuota = false
		st.s.quota--
		st.s.cfg.SharedStreams.give(1)
	}
}

// ID is the stream's number on its session.
func (st *Stream) ID() uint32 { return st.id }

// Window is the receive window the stream has grown to (see Config.MaxWindow).
func (st *Stream) Window() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.maxWin
}

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.rdl.set(t)
	st.wdl.set(t)
	return nil
}

// SetReadDeadline bounds Read and WriteTo.
func (st *Stream) SetReadDeadline(t time.Time) error { st.rdl.set(t); return nil }

// SetWriteDeadline bounds how long Write waits for the peer's window.
func (st *Stream) SetWriteDeadline(t time.Time) error { st.wdl.set(t); return nil }

// LocalAddr is the local address of the session's connection.
func (st *Stream) LocalAddr() net.Addr { return st.s.addr(true) }

// RemoteAddr is the remote address of the session's connection.
func (st *Stream) RemoteAddr() net.Addr { return st.s.addr(false) }

type muxAddr struct{}

func (muxAddr) Network() string { return "mux" }
func (muxAddr) String() string  { return "mux" }

func (s *Session) addr(local bool) net.Addr {
	c, ok := s.conn.(interface {
		LocalAddr() net.Addr
		RemoteAddr() net.Addr
	})
	switch {
	case !ok:
		return muxAddr{}
	case local:
		return c.LocalAddr()
	default:
		return c.RemoteAddr()
	}
}
