// Package mux carries many byte streams over one fabric link (a TLS 1.3 connection), each with
// its own credit-based flow-control window, so one slow reader never stalls its link.
//
// Why not smux or yamux: on the 2-core target machine the data plane's cost is dominated by
// system calls and goroutine hand-offs, not by encryption. Both libraries hand every frame to a
// send goroutine and back (smux through two), and cap frames at 64 KiB, so a 1 MiB write costs
// sixteen write system calls per hop; a loopback TCP hop costs 0.69 core-seconds per GB with
// 64 KiB writes and 0.27 with 1 MiB writes. Here a Write goes straight to the link from the
// writer's goroutine (frames of up to 1 MiB, one system call each), the first frame of a stream
// opens it (no separate open round), and the reader hands received frames to WriteTo without
// copying, which is how a hub relays and how a router decrypts.
//
// Wire format: every frame is an 8-byte header — type (1 byte), payload length (3 bytes, big
// endian), stream id (4 bytes) — followed by the payload. Types: open (the stream's first frame,
// may carry data), data, credit (the length field returns that many bytes of window; no
// payload) and fin (the sender closed the stream; no payload). The dialing end numbers its
// streams odd, the accepting end even.
package mux

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztna/ztna/internal/bufpool"
)

// Frame types.
const (
	typeOpen   = 1
	typeData   = 2
	typeCredit = 3
	typeFin    = 4
)

const (
	// minWindow is the least window a stream is granted, however many share the session.
	minWindow = 256 << 10
	// minInitialWindow is the least InitialWindow: below a TLS record's worth, credit frames
	// would outnumber data frames.
	minInitialWindow = 4 << 10
	headerSize       = 8
	maxLength        = 1<<24 - 1
	// mergeLimit: a payload this small is copied behind its header so that both leave as one
	// TLS record (of at most 16 KiB).
	mergeLimit = 16<<10 - headerSize
)

// Config tunes a session. Both ends must use the same InitialWindow (or, without one, the
// same Window).
type Config struct {
	// Window is each stream's receive window: how many bytes a writer may send ahead of the
	// reader. An idle stream holds no buffer whatever the window.
	Window int
	// InitialWindow, when set below Window, budgets the session's memory: every stream starts
	// with InitialWindow of credit in each direction instead of Window, and its window grows
	// towards Window only as its reader consumes, with credit taken from the session window.
	// What all streams' windows hold beyond InitialWindow — data received and not read plus
	// credit the peer has not used — never exceeds the session window (SessionWindow, grown by
	// autotune up to MaxSessionWindow), so a link buffers at most MaxSessionWindow plus
	// InitialWindow per stream, however many stall. A stream that stops being read is granted
	// nothing more; once read again, it is topped up to its share, which shrinks as more
	// streams hold windows beyond the initial one. Both ends must agree on it (the fabric
	// does through the TLS handshake's ALPN); zero means Window, the unbudgeted contract.
	InitialWindow int
	// SessionWindow is what the streams that have data waiting share: with many of them, each
	// is granted SessionWindow/n (at least minWindow, at most its window), so the data in
	// flight on a link stays small enough to stay in the CPU's caches. A stream alone gets its
	// window. With InitialWindow set it is a hard budget (see there) and the floor is
	// InitialWindow.
	SessionWindow int
	// MaxWindow bounds how far a stream's window grows when the link's round-trip time, not
	// its reader, limits it: a stream whose reader consumed half its window in less than two
	// round trips gets twice the window (as QUIC stacks tune theirs), and the session window
	// grows in proportion, up to MaxSessionWindow. The windows of a session's streams grow by
	// MaxSessionWindow - SessionWindow at the most in all (a stream returns its share when it
	// stops receiving), so what the peer may have in flight stays within Window per stream
	// plus that. At Window (or with no RTT) windows stay put.
	MaxWindow        int
	MaxSessionWindow int
	// RTT reports the link's round-trip time; zero while unknown.
	RTT func() time.Duration
	// WindowGoal, in bytes per second: a stream window that allows this much per round trip
	// no longer grows (zero: no such bound).
	WindowGoal float64
	// MaxFrame is the largest data payload in one frame.
	MaxFrame int
	// AcceptBacklog is how many opened streams may wait for AcceptStream.
	AcceptBacklog int
	// ReadBuffer is the size of the buffered reader over the connection (unused when the
	// connection is an ExactReader).
	ReadBuffer int
	// MaxStreams bounds the streams the peer has opened and not yet closed on both ends;
	// MaxSetups bounds those of them not yet marked Stream.SetUp (zero: no bound): ServeStreams
	// marks a stream when its handler returns, a user of AcceptStream must mark it itself. A stream opened beyond either is refused by the session's
	// reader itself — no goroutine, no Stream, its payload dropped — with what Refuse returns
	// as its only data, then a fin. Refuse runs on the reader (it may count, it must not
	// block); nil sends only the fin.
	MaxStreams int
	MaxSetups  int
	// MaxAllStreams bounds every stream of the session, whichever end opened it (those not
	// yet closed by both ends; zero: no bound): a peer's stream beyond it is refused as
	// beyond MaxStreams (LimitAllStreams), and OpenStream fails with ErrStreamLimit. Where
	// every stream is granted its whole window up front (no InitialWindow), it bounds what
	// the peer can make this end buffer: MaxAllStreams × Window.
	MaxAllStreams int
	// SharedStreams, when set, bounds the streams the peers of every session sharing it have
	// opened (for example all the links of one identity), refused the same way.
	SharedStreams *Quota
	Refuse        func(Limit) []byte
	// Pace, when set, is called on the reader before each stream the peer opens; it may block
	// to slow a peer that opens streams too fast: meanwhile the session reads nothing more, so
	// the peer's own sends back up, and pacing costs this end no work.
	Pace func()
}

// Limit names what refused a stream (see Config.MaxStreams).
type Limit int

// Limits of a session.
const (
	LimitStreams       Limit = iota // Config.MaxStreams
	LimitSetups                     // Config.MaxSetups
	LimitSharedStreams              // Config.SharedStreams
	LimitAllStreams                 // Config.MaxAllStreams
)

// Quota is a bound shared by sessions (see Config.SharedStreams).
type Quota struct {
	max int32
	n   atomic.Int32
}

// NewQuota returns a quota of max.
func NewQuota(max int) *Quota { return &Quota{max: int32(min(max, 1<<31-1))} }

// InUse is how much of the quota is taken.
func (q *Quota) InUse() int { return int(q.n.Load()) }

func (q *Quota) take() bool {
	if q == nil {
		return true
	}
	if q.n.Add(1) > q.max {
		q.n.Add(-1)
		return false
	}
	return true
}

func (q *Quota) give(n int) {
	if q != nil && n > 0 {
		q.n.Add(-int32(n))
	}
}

// DefaultConfig is tuned for links that carry bulk data at over 1 GB/s.
func DefaultConfig() Config {
	return Config{Window: 4 << 20, SessionWindow: 16 << 20, MaxFrame: 1 << 20, AcceptBacklog: 1024, ReadBuffer: 64 << 10}
}

func (c Config) check() error {
	switch {
	case c.Window < minWindow || c.Window > maxLength:
		return fmt.Errorf("mux: window %d outside 256 KiB..16 MiB", c.Window)
	case c.InitialWindow != 0 && (c.InitialWindow < minInitialWindow || c.InitialWindow > c.Window):
		return fmt.Errorf("mux: initial window %d outside 4 KiB..the window %d", c.InitialWindow, c.Window)
	case c.SessionWindow < c.Window:
		return fmt.Errorf("mux: session window %d below the stream window %d", c.SessionWindow, c.Window)
	case c.MaxWindow != 0 && c.MaxWindow < c.Window, c.MaxSessionWindow != 0 && c.MaxSessionWindow < c.SessionWindow:
		return errors.New("mux: a window's maximum is below its start")
	case c.MaxWindow > 1<<30, c.MaxSessionWindow > 1<<30:
		return errors.New("mux: windows beyond 1 GiB")
	case c.MaxFrame < 1<<10 || c.MaxFrame > maxLength:
		return fmt.Errorf("mux: max frame %d outside 1 KiB..16 MiB", c.MaxFrame)
	case c.AcceptBacklog < 1:
		return errors.New("mux: accept backlog must be positive")
	case c.ReadBuffer < headerSize:
		return errors.New("mux: read buffer too small")
	case c.MaxStreams < 0, c.MaxSetups < 0, c.MaxAllStreams < 0:
		return errors.New("mux: stream limits must not be negative")
	}
	return nil
}

// ErrSessionClosed is returned once the session has been closed locally.
var ErrSessionClosed = errors.New("mux: session closed")

// ErrStreamLimit is what OpenStream returns when the session has Config.MaxAllStreams open.
var ErrStreamLimit = errors.New("mux: the session has as many streams open as it may")

// BuffersWriter writes several buffers as one unit (for a TLS connection: whole records that
// leave in one system call). The connection may implement it; otherwise frames with large
// payloads take two writes.
type BuffersWriter interface {
	WriteBuffers(v [][]byte) (int, error)
}

// ExactReader reads exactly len(p) bytes and may use p's capacity beyond len(p) as scratch (a
// tlsrecord.Conn decrypts records straight into the frame's buffer that way). A session reads
// such a connection directly, without a buffered reader and its copy.
type ExactReader interface {
	ReadFull(p []byte) error
}

// Session is one end of a multiplexed connection.
type Session struct {
	conn io.ReadWriteCloser
	read func(p []byte) error // exactly len(p) bytes, maybe using p's capacity as scratch
	cfg  Config

	// wlock is held (a token in it) while a frame goes on the wire. A channel, not a mutex, so
	// that a writer queued behind a write stuck on a full connection can give up at its
	// deadline: a hub then retries a stream setup on another router instead of waiting for a
	// silent router's link to be declared dead.
	wlock   chan struct{}
	scratch []byte // header plus a small payload, under wlock

	active  atomic.Int32 // streams with received data not yet read
	sessWin atomic.Int64 // the session window now: SessionWindow, grown by autotune
	grown   atomic.Int64 // what live streams' windows grew by in all (see Config.MaxWindow)
	// With a budget (Config.InitialWindow below Window): what streams' windows hold beyond
	// InitialWindow in all (never above sessWin), and how many streams hold some.
	charged  atomic.Int64
	charging atomic.Int32
	budgeted bool
	buffered atomic.Int64 // bytes received and not yet read, on all streams

	mu      sync.Mutex
	streams map[uint32]*Stream
	byPeer  int // streams in streams the peer opened (see Config.MaxStreams)
	quota   int // of those, the ones that hold a slot of Config.SharedStreams
	setups  int // of those, the ones whose handler has not called SetUp yet
	nextID  uint32
	err     error         // why the session ended; set before die closes
	handle  func(*Stream) // set by ServeStreams

	accept  chan *Stream
	die     chan struct{}
	dieOnce sync.Once
}

// Client starts the dialing end of a session over conn.
func Client(conn io.ReadWriteCloser, cfg Config) (*Session, error) { return newSession(conn, cfg, 1) }

// Server starts the accepting end of a session over conn.
func Server(conn io.ReadWriteCloser, cfg Config) (*Session, error) { return newSession(conn, cfg, 2) }

func newSession(conn io.ReadWriteCloser, cfg Config, firstID uint32) (*Session, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Session{
		conn:    conn,
		cfg:     cfg,
		wlock:   make(chan struct{}, 1),
		scratch: make([]byte, headerSize+mergeLimit),
		streams: map[uint32]*Stream{},
		nextID:  firstID,
		accept:  make(chan *Stream, cfg.AcceptBacklog),
		die:     make(chan struct{}),
	}
	if er, ok := conn.(ExactReader); ok {
		s.read = er.ReadFull
	} else {
		r := bufio.NewReaderSize(conn, cfg.ReadBuffer)
		s.read = func(p []byte) error {
			_, err := io.ReadFull(r, p)
			return err
		}
	}
	if s.cfg.MaxWindow == 0 {
		s.cfg.MaxWindow = s.cfg.Window
	}
	if s.cfg.MaxSessionWindow == 0 {
		s.cfg.MaxSessionWindow = s.cfg.SessionWindow
	}
	if s.cfg.InitialWindow == 0 {
		s.cfg.InitialWindow = s.cfg.Window
	}
	s.budgeted = s.cfg.InitialWindow < s.cfg.Window
	s.sessWin.Store(int64(s.cfg.SessionWindow))
	go s.readLoop()
	return s, nil
}

// OpenStream returns a new stream. Nothing is sent until its first Write, which opens it at the
// peer together with the first data.
func (s *Session) OpenStream() (*Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.cfg.MaxAllStreams > 0 && len(s.streams) >= s.cfg.MaxAllStreams {
		return nil, ErrStreamLimit
	}
	id := s.nextID
	for s.streams[id] != nil { // only after the ids wrapped around
		id += 2
	}
	s.nextID = id + 2
	st := newStream(s, id, false)
	s.streams[id] = st
	return st, nil
}

// AcceptStream waits for the peer to open a stream.
func (s *Session) AcceptStream() (*Stream, error) {
	select {
	case st := <-s.accept:
		return st, nil
	case <-s.die:
		return nil, s.Err()
	}
}

// windowTarget is the window a stream whose own window is now win is granted.
func (s *Session) windowTarget(win int) int {
	n := max(int(s.active.Load()), 1)
	return min(win, max(minWindow, int(s.sessWin.Load())/n))
}

// budgetTarget is, with a budget, the window a stream whose own window is now win is topped up
// to: an equal share of the session window among the streams that hold some of it (the caller
// counted, if it holds none), never below InitialWindow. Streams stalled at their initial
// window take no share.
func (s *Session) budgetTarget(win int, holds bool) int {
	n := int(s.charging.Load())
	if !holds {
		n++
	}
	return min(win, max(s.cfg.InitialWindow, int(s.sessWin.Load())/n))
}

// charge takes up to n bytes of the session window and returns how many it took.
func (s *Session) charge(n int64) int64 {
	for {
		cur := s.charged.Load()
		got := min(n, s.sessWin.Load()-cur)
		if got <= 0 {
			return 0
		}
		if s.charged.CompareAndSwap(cur, cur+got) {
			return got
		}
	}
}

// Buffered is how many bytes the session's streams have received and not yet read.
func (s *Session) Buffered() int { return int(s.buffered.Load()) }

// raiseSessionWindow grows the session window in proportion to a stream window grown to win.
func (s *Session) raiseSessionWindow(win int) {
	want := min(int64(s.cfg.MaxSessionWindow), int64(win)*int64(s.cfg.SessionWindow)/int64(s.cfg.Window))
	for {
		cur := s.sessWin.Load()
		if want <= cur || s.sessWin.CompareAndSwap(cur, want) {
			return
		}
	}
}

// ServeStreams runs handle on every stream the peer opens, each in a goroutine started by the
// session's reader itself, until the session ends; it returns why it ended. Unlike an
// AcceptStream loop, no goroutine sits between the reader and the handler: on a 2-vCPU VM
// every hand-off between goroutines can cost a cross-CPU wake-up of tens of microseconds.
func (s *Session) ServeStreams(handle func(*Stream)) error {
	s.mu.Lock()
	s.handle = handle
	s.mu.Unlock()
	for { // streams that were queued before the handler was set
		select {
		case st := <-s.accept:
			go serve(handle, st)
		case <-s.die:
			return s.Err()
		}
	}
}

// serve runs a ServeStreams handler; the stream's setup is over when it returns at the latest.
func serve(handle func(*Stream), st *Stream) {
	defer st.SetUp()
	handle(st)
}

// NumStreams is the number of streams not yet closed by both ends.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// Close ends the session and every stream on it.
func (s *Session) Close() error {
	s.fail(ErrSessionClosed)
	return nil
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.die }

// Err says why the session ended (nil while it runs).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Session) fail(err error) {
	s.dieOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		streams := s.streams
		s.streams = map[uint32]*Stream{}
		s.cfg.SharedStreams.give(s.quota)
		s.byPeer, s.quota, s.setups = 0, 0, 0
		for _, st := range streams { // what they held is given back here, once
			st.inQuota, st.inSetup = false, false
		}
		s.mu.Unlock()
		close(s.die)
		s.conn.Close()
		for _, st := range streams {
			st.sessionEnded(err)
		}
	})
}

// writeFrame sends one frame; the payload (data frames only) may be empty. It gives up when
// deadline closes before the frame's turn on the wire (a nil deadline waits).
func (s *Session) writeFrame(typ byte, id uint32, length int, payload []byte, deadline <-chan struct{}) error {
	select {
	case s.wlock <- struct{}{}:
	case <-deadline:
		return ErrTimeout
	case <-s.die:
		return s.Err()
	}
	defer func() { <-s.wlock }()
	select {
	case <-s.die:
		return s.Err()
	default:
	}
	if length > maxLength { // would spill into the type byte
		return fmt.Errorf("mux: frame length %d beyond %d", length, maxLength)
	}
	hdr := s.scratch[:headerSize]
	binary.BigEndian.PutUint32(hdr[0:], uint32(typ)<<24|uint32(length))
	binary.BigEndian.PutUint32(hdr[4:], id)
	var err error
	switch bw, ok := s.conn.(BuffersWriter); {
	case len(payload) <= mergeLimit:
		n := copy(s.scratch[headerSize:], payload)
		_, err = s.conn.Write(s.scratch[:headerSize+n])
	case ok:
		_, err = bw.WriteBuffers([][]byte{hdr, payload})
	default:
		if _, err = s.conn.Write(hdr); err == nil {
			_, err = s.conn.Write(payload)
		}
	}
	if err != nil {
		// A frame may be half on the wire: the session cannot go on.
		s.fail(fmt.Errorf("mux: write: %w", err))
	}
	return err
}

func (s *Session) readLoop() {
	var hdr [headerSize]byte
	for {
		if err := s.read(hdr[:]); err != nil {
			s.fail(readErr(err))
			return
		}
		word := binary.BigEndian.Uint32(hdr[0:])
		typ, length := byte(word>>24), int(word&maxLength)
		id := binary.BigEndian.Uint32(hdr[4:])
		var err error
		switch typ {
		case typeOpen:
			err = s.opened(id, length)
		case typeData:
			err = s.data(s.lookup(id), id, length)
		case typeCredit:
			if st := s.lookup(id); st != nil {
				st.credited(length)
			}
		case typeFin:
			if st := s.lookup(id); st != nil {
				st.finReceived()
			}
		default:
			err = fmt.Errorf("mux: unknown frame type %d", typ)
		}
		if err != nil {
			s.fail(err)
			return
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("mux: connection closed: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("mux: read: %w", err)
}

func (s *Session) lookup(id uint32) *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

func (s *Session) opened(id uint32, length int) error {
	if id%2 == s.nextID%2 {
		return fmt.Errorf("mux: peer opened stream %d, which is ours to number", id)
	}
	if s.cfg.Pace != nil {
		s.cfg.Pace()
	}
	s.mu.Lock()
	if s.streams[id] != nil {
		s.mu.Unlock()
		return fmt.Errorf("mux: peer opened stream %d twice", id)
	}
	handle := s.handle
	switch {
	case s.cfg.MaxStreams > 0 && s.byPeer >= s.cfg.MaxStreams:
		s.mu.Unlock()
		return s.refuse(id, length, LimitStreams)
	case s.cfg.MaxAllStreams > 0 && len(s.streams) >= s.cfg.MaxAllStreams:
		s.mu.Unlock()
		return s.refuse(id, length, LimitAllStreams)
	case s.cfg.MaxSetups > 0 && s.setups >= s.cfg.MaxSetups:
		s.mu.Unlock()
		return s.refuse(id, length, LimitSetups)
	case !s.cfg.SharedStreams.take():
		s.mu.Unlock()
		return s.refuse(id, length, LimitSharedStreams)
	}
	st := newStream(s, id, true)
	s.streams[id] = st
	s.byPeer++
	if s.cfg.SharedStreams != nil {
		s.quota++
		st.inQuota = true
	}
	if s.cfg.MaxSetups > 0 {
		s.setups++
		st.inSetup = true
	}
	s.mu.Unlock()
	if err := s.data(st, id, length); err != nil {
		return err
	}
	if handle != nil {
		go serve(handle, st)
		return nil
	}
	select {
	case s.accept <- st:
		return nil
	case <-s.die:
		return s.Err()
	}
}

// refuse answers a stream opened beyond MaxStreams without ever listing it: later frames for
// its id find no stream and are dropped. The reader itself writes the answer: a peer that
// opens streams faster than it reads their refusals stalls its own link, nobody else's.
func (s *Session) refuse(id uint32, length int, why Limit) error {
	if err := s.data(nil, id, length); err != nil {
		return err
	}
	var answer []byte
	if s.cfg.Refuse != nil {
		answer = s.cfg.Refuse(why)
	}
	return s.writeRefusal(id, answer)
}

// writeRefusal sends answer (if any) and a fin on stream id in one write: one system call and
// one TLS record, which is most of what a refusal costs.
func (s *Session) writeRefusal(id uint32, answer []byte) error {
	if len(answer) > mergeLimit-headerSize {
		answer = answer[:mergeLimit-headerSize]
	}
	select {
	case s.wlock <- struct{}{}:
	case <-s.die:
		return s.Err()
	}
	defer func() { <-s.wlock }()
	b := s.scratch[:0]
	if len(answer) > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(typeData)<<24|uint32(len(answer)))
		b = binary.BigEndian.AppendUint32(b, id)
		b = append(b, answer...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(typeFin)<<24)
	b = binary.BigEndian.AppendUint32(b, id)
	if _, err := s.conn.Write(b); err != nil {
		s.fail(fmt.Errorf("mux: write: %w", err))
		return err
	}
	return nil
}

// data reads a payload off the wire into the stream's queue. A payload for a stream that is
// gone (closed here before the peer learnt of it) is read and dropped.
func (s *Session) data(st *Stream, id uint32, length int) error {
	if length == 0 {
		return nil
	}
	if length > s.cfg.MaxFrame {
		return fmt.Errorf("mux: frame of %d bytes on stream %d exceeds %d", length, id, s.cfg.MaxFrame)
	}
	buf := bufpool.Get(length)
	if err := s.read((*buf)[:length]); err != nil {
		bufpool.Put(buf)
		return readErr(err)
	}
	if st == nil {
		bufpool.Put(buf)
		return nil
	}
	return st.received(buf, length)
}

// deadline is a settable wake-up, like net.Pipe's: wait returns a channel closed when the
// deadline passes.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// timeoutError is what a stream operation returns when its deadline passed.
type timeoutError struct{}

func (timeoutError) Error() string   { return "mux: i/o deadline reached" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// ErrTimeout is the error of an operation whose deadline passed; it is a net.Error with
// Timeout() true, and os.ErrDeadlineExceeded matches it with errors.Is.
var ErrTimeout net.Error = timeoutError{}

func (timeoutError) Is(target error) bool { return target == errDeadlineExceeded }
