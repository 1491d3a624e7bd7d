package bench

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305" // TLS 1.3's third suite, which Go picks on CPUs without AES instructions
)

// The floor is the best any design with the overlay's hops can do on this machine: the same
// three loopback TCP hops (client → relay in the bench process, where the hub runs → relay in a
// separate process, where the router runs → target) through relays that only read and write,
// with no encryption, no multiplexer and no framing. Whatever the floor misses, the overlay
// cannot meet either.

// relayTargetsEnv passes the relay process the targets it relays to, comma-separated.
const relayTargetsEnv = "ZTNA_BENCH_RELAY_TARGETS"

// relayBufSize is the relays' read/write buffer: large, so that a relay behind its sender drains
// the socket in few system calls. Of 256 KiB, 1, 4 and 16 MiB, 4 MiB cost the least CPU per GB
// on the 2-core machine of RESULTS.md (the floor must be the cheapest relay, not a typical one).
const relayBufSize = 4 << 20

// startFloorChain starts a relay chain to each target and returns the relay process and a dial
// function that reaches a target (by its direct address) through its chain.
func startFloorChain(b *testing.B, targets ...string) (*child, dialFunc) {
	far := startChild(b, "relay", relayTargetsEnv+"="+strings.Join(targets, ","))
	farAddrs := strings.Split(far.addr, ",")
	near := map[string]string{}
	for i, t := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go serveRelay(ln, farAddrs[i])
		near[t] = ln.Addr().String()
	}
	return far, redirect(near)
}

// runRelayChild is the floor's far relay: one listener per target, addresses printed in order.
func runRelayChild() {
	var addrs []string
	for _, t := range strings.Split(os.Getenv(relayTargetsEnv), ",") {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		go serveRelay(ln, t)
		addrs = append(addrs, ln.Addr().String())
	}
	fmt.Println("ready", strings.Join(addrs, ","))
	childCommands()
}

func serveRelay(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go relay(c.(*net.TCPConn), target)
	}
}

// relay connects c to a new connection to target, both ways, half-closes included.
func relay(c *net.TCPConn, target string) {
	defer c.Close()
	t, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer t.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(c, t.(*net.TCPConn))
	}()
	pump(t.(*net.TCPConn), c)
	<-done
}

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// pump copies src to dst with read and write system calls, then half-closes dst; on an error it
// closes both. Not io.Copy: between two TCP connections it splices inside the kernel, which no
// relay that must decrypt or inspect the bytes can do.
func pump(dst, src *net.TCPConn) {
	buf := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(buf)
	for {
		n, err := src.Read(*buf)
		if n > 0 {
			if _, werr := dst.Write((*buf)[:n]); werr != nil {
				err = werr
			}
		}
		if err == io.EOF {
			dst.CloseWrite()
			return
		}
		if err != nil {
			dst.Close()
			src.Close()
			return
		}
	}
}

// Sizes of the AEAD measurement.
const (
	aeadFrame  = 64 << 10
	aeadBytes  = 256 << 20 // per repetition
	aeadRepeat = 4
)

// aeadCost is the CPU time, in core-seconds per GB, of sealing aeadFrame-byte frames in place
// with aead, measured on one locked thread so that other goroutines and processes don't count:
// the least of aeadRepeat repetitions, since other processes on the same cores (cache, memory
// bandwidth) can only make it look dearer than it is.
func aeadCost(aead cipher.AEAD) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	frame := make([]byte, aeadFrame, aeadFrame+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	least := math.Inf(1)
	for range aeadRepeat {
		cpu0 := threadCPUSeconds()
		for i := range aeadBytes / aeadFrame {
			binary.BigEndian.PutUint64(nonce[len(nonce)-8:], uint64(i))
			aead.Seal(frame[:0], nonce, frame, nil)
		}
		least = min(least, (threadCPUSeconds()-cpu0)/(aeadBytes/1e9))
	}
	return least
}

func threadCPUSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func aesGCM(keyBytes int) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, keyBytes))
	if err != nil {
		panic(err) // keyBytes is 16 or 32
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// tls13AEAD is the cipher suite two Go TLS 1.3 ends negotiate on this machine (internal/fabric
// configures none, and Go picks by the CPU's AES support), from a handshake over an in-memory
// pipe, with its AEAD.
func tls13AEAD(b *testing.B) (string, cipher.AEAD) {
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	selfSigned(b, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	server := tls.Server(sc, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
	go server.Handshake()
	client := tls.Client(cc, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "127.0.0.1"})
	if err := client.Handshake(); err != nil {
		b.Fatalf("TLS 1.3 handshake: %v", err)
	}
	suite := client.ConnectionState().CipherSuite
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return tls.CipherSuiteName(suite), aesGCM(16)
	case tls.TLS_AES_256_GCM_SHA384:
		return tls.CipherSuiteName(suite), aesGCM(32)
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		aead, err := chacha20poly1305.New(make([]byte, chacha20poly1305.KeySize))
		if err != nil {
			b.Fatal(err)
		}
		return tls.CipherSuiteName(suite), aead
	}
	b.Fatalf("TLS 1.3 negotiated an unknown suite %#x", suite)
	return "", nil
}

// cryptoFloor is the least CPU the overlay's layering adds per GB moved: every byte is sealed
// and opened once on each of the two TLS links (client–hub, hub–router: 4 passes) and once end
// to end (Noise AES-256-GCM, client–router: 2 passes). Opening costs what sealing costs.
type cryptoFloor struct {
	tlsSuite     string
	tlsPass      float64 // core-s/GB, one pass of the TLS suite
	e2ePass      float64 // core-s/GB, one AES-256-GCM pass
	chain, total float64 // core-s/GB: the floor chain (measured), and with the passes added
}

func measureCryptoFloor(b *testing.B, chain float64) cryptoFloor {
	suite, aead := tls13AEAD(b)
	f := cryptoFloor{tlsSuite: suite, tlsPass: aeadCost(aead), e2ePass: aeadCost(aesGCM(32)), chain: chain}
	f.total = chain + 4*f.tlsPass + 2*f.e2ePass
	return f
}

// maxGBs is the throughput the bound allows with every CPU of the machine busy on one path.
func (f cryptoFloor) maxGBs() float64 { return float64(runtime.NumCPU()) / f.total }
