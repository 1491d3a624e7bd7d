// Package bench measures the data plane against direct TCP in the same run (make bench):
// single-stream throughput and its CPU cost, 16-stream aggregate, new-stream latency, 64-byte
// ping-pong and router memory per idle stream; and how long new dials are disrupted when a
// router is killed or goes silent (BenchmarkFailover).
//
// Path measured in this phase ("overlay/SDK"): the Go SDK client and the hub run in the benchmark
// process, the router runs as a separate process (this test binary re-executed), the TCP targets
// run in the benchmark process; every hop is loopback TCP, client↔hub and hub↔router with TLS 1.3,
// client↔router end-to-end encrypted. "direct" is the same client code dialing the target over
// plain TCP. "floor" is the overlay's hop count with nothing else: the same client, a relay in
// the benchmark process and one in a separate process that only read and write, the same
// target; the benchmark also measures what the mandated encryption costs per GB and prints the
// least CPU the overlay's layering needs, so that a target below the floor shows as such. All
// processes share the machine's CPUs, as the targets require.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/e2e"
	"github.com/ztna/ztna/internal/fabric"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/router/hosting"
	"github.com/ztna/ztna/router/targets"
	"github.com/ztna/ztna/tests/dataplane/harness"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// childEnv selects a helper-process role when this binary re-executes itself.
const childEnv = "ZTNA_BENCH_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "router":
		runRouterChild()
	case "echo":
		runEchoChild()
	case "relay":
		runRelayChild()
	default:
		os.Exit(harness.Main(m)) // the control-plane benchmark runs a controller process
	}
}

// Sizes of the measurements, in all: each path takes its turn rounds times, each time with a
// share of the work.
const (
	singleBytes   = 1 << 30
	multiStreams  = 16
	multiBytes    = 64 << 20 // per stream
	latencyDials  = 1000
	pingPongs     = 2000
	pingPongSize  = 64
	idleStreams   = 5000
	copyChunkSize = 1 << 20
)

// rounds is how many times every path is measured, in turn, with a share of the work each time;
// a figure is the median of its rounds. This machine's speed drifts by tens of percent over tens
// of seconds (other tenants of the host): measured in turn, the paths meet the same drift and
// their ratios stay honest.
const rounds = 4

// inTurn measures f on every path in turn, rounds times, f doing a 1/rounds share of the work
// each time, and returns each path's figures (f returns one or more): the medians of its rounds.
func inTurn(b *testing.B, what string, names []string, dials []dialFunc, f func(dialFunc) ([]float64, error)) [][]float64 {
	byRound := make([][][]float64, len(dials))
	for range rounds {
		for p, dial := range dials {
			vs, err := f(dial)
			if err != nil {
				b.Fatalf("%s (%s): %v", what, names[p], err)
			}
			byRound[p] = append(byRound[p], vs)
		}
	}
	out := make([][]float64, len(dials))
	for p := range dials {
		out[p] = medians(byRound[p])
	}
	return out
}

// medians returns, for each figure, its median over the rounds (each round: one value per
// figure).
func medians(byRound [][]float64) []float64 {
	out := make([]float64, len(byRound[0]))
	for i := range out {
		vs := make([]float64, len(byRound))
		for r, v := range byRound {
			vs[r] = v[i]
		}
		slices.Sort(vs)
		if n := len(vs); n%2 == 1 {
			out[i] = vs[n/2]
		} else {
			out[i] = (vs[n/2-1] + vs[n/2]) / 2
		}
	}
	return out
}

// Paths measured by BenchmarkDataPlane, in the order of its columns.
const (
	pathOverlay = iota
	pathFloor
	pathDirect
	numPaths
)

// result is one row of the table: a figure for each path (NaN: not measured on that path).
type result struct {
	name, unit string
	v          []float64 // by path
	target     string
	relative   bool             // the target is a ratio to direct
	scaling    bool             // the target compares the path with itself: the floor bounds nothing
	floorNote  string           // appended to the floor's verdict
	meets      func(p int) bool // whether path p meets the target; nil: no target
}

func BenchmarkDataPlane(b *testing.B) {
	for range b.N {
		benchmarkOnce(b)
	}
}

func benchmarkOnce(b *testing.B) {
	load0 := loadavg()
	s := stack.Start(b, stack.Options{})
	sinkPort := stack.Serve(b, sink)
	echoPort := stack.Serve(b, stack.Echo)
	sinkSvc := stack.Service("sink", "127.0.0.1", sinkPort)
	echoSvc := stack.Service("echo", "127.0.0.1", echoPort)
	services := []control.Service{sinkSvc, echoSvc}
	router := startRouterChild(b, s, "r1", services)
	s.WaitRouters("r1")
	s.Update(stack.Policy(services, []string{"r1"}, []string{"bench"}))
	c := s.Client("bench")

	sinkAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sinkPort))
	echoAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(echoPort))
	overlay := func(ctx context.Context, addr string) (net.Conn, error) { return c.Dial(ctx, addr) }
	relay, floor := startFloorChain(b, sinkAddr, echoAddr)
	paths := [numPaths]dialFunc{pathOverlay: overlay, pathFloor: floor, pathDirect: dialDirect}
	pathNames := [numPaths]string{pathOverlay: "overlay", pathFloor: "floor", pathDirect: "direct"}
	// Warm every path (links, caches) before measuring.
	for range 20 {
		for _, dial := range paths {
			if _, err := latencyOnce(dial, echoAddr); err != nil {
				b.Fatal(err)
			}
		}
	}

	// run measures f on every path in turn (inTurn); the result is indexed by figure, then path.
	run := func(name string, f func(dialFunc) ([]float64, error)) [][]float64 {
		var out [][]float64
		for p, figures := range inTurn(b, name, pathNames[:], paths[:], f) {
			for i, v := range figures {
				if p == 0 {
					out = append(out, make([]float64, numPaths))
				}
				out[i][p] = v
			}
		}
		return out
	}
	two := func(a, b float64, err error) ([]float64, error) { return []float64{a, b}, err }

	// Single stream, with the CPU time all processes on the path spent per GB: under
	// contention from other processes wall-clock throughput says little, CPU cost still does.
	single := run("single stream", func(dial dialFunc) ([]float64, error) {
		cpu0 := cpuSeconds(router, relay)
		gbs, err := throughput(dial, sinkAddr, 1, singleBytes/rounds)
		return two(gbs, (cpuSeconds(router, relay)-cpu0)/(singleBytes/rounds/1e9), err)
	})
	multi := run("16 streams", func(dial dialFunc) ([]float64, error) {
		cpu0 := cpuSeconds(router, relay)
		gbs, err := throughput(dial, sinkAddr, multiStreams, multiBytes/rounds)
		return two(gbs, (cpuSeconds(router, relay)-cpu0)/(multiStreams*multiBytes/rounds/1e9), err)
	})
	lat := run("new stream", func(dial dialFunc) ([]float64, error) {
		return two(newStreamLatency(dial, echoAddr, latencyDials/rounds))
	})
	pp := run("ping-pong", func(dial dialFunc) ([]float64, error) { return two(pingPong(dial, echoAddr, pingPongs/rounds)) })
	below := func(v []float64, limit float64) func(int) bool { return func(p int) bool { return v[p] <= limit } }
	rs := []result{
		{name: "single-stream throughput", unit: "GB/s", v: single[0], target: ">= 1 GB/s",
			meets: func(p int) bool { return single[0][p] >= 1 }},
		{name: "single-stream CPU cost", unit: "s/GB", v: single[1], target: "core-s/GB, all processes"},
		{name: "16-stream aggregate", unit: "GB/s", v: multi[0], target: ">= single stream", scaling: true,
			meets: func(p int) bool { return multi[0][p] >= single[0][p] }},
		{name: "16-stream CPU cost", unit: "s/GB", v: multi[1], target: "core-s/GB, all processes"},
		{name: "new stream p50 (dial+1B echo)", unit: "ms", v: lat[0], target: "<= 1 ms", meets: below(lat[0], 1)},
		{name: "new stream p99", unit: "ms", v: lat[1], target: "<= 5 ms", meets: below(lat[1], 5)},
		{name: "ping-pong 64 B p50", unit: "µs", v: pp[0], target: "<= 3x direct", relative: true,
			meets: func(p int) bool { return pp[0][p] <= 3*pp[0][pathDirect] }},
		{name: "ping-pong 64 B p99", unit: "µs", v: pp[1]},
	}
	crypto := measureCryptoFloor(b, single[1][pathFloor])
	rs[0].floorNote = fmt.Sprintf(" (without encryption; with the mandated encryption at most %.2f GB/s, see below)", crypto.maxGBs())

	echoChild := startEchoChild(b)
	memOverlay, err := idleMemory(router, overlay, echoAddr)
	if err != nil {
		b.Fatalf("idle memory (overlay): %v", err)
	}
	memDirect, err := idleMemory(echoChild, dialDirect, echoChild.addr)
	if err != nil {
		b.Fatalf("idle memory (direct): %v", err)
	}
	// The floor's relays hold a buffer per direction while idle, so their memory says nothing
	// about what a stream must cost: not measured.
	mem := []float64{pathOverlay: memOverlay, pathFloor: math.NaN(), pathDirect: memDirect}
	rs = append(rs, result{name: "memory per idle stream", unit: "KiB", v: mem,
		target: "<= 64 KiB (router)", meets: func(p int) bool { return mem[p] <= 64 }})

	report(b, rs, crypto, single[1][pathOverlay], load0, loadavg())
}

type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// dialDirect dials addr over plain TCP.
func dialDirect(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// redirect dials, instead of a target's direct address, the address m maps it to (a local
// forwarder in front of the target).
func redirect(m map[string]string) dialFunc {
	return func(ctx context.Context, addr string) (net.Conn, error) { return dialDirect(ctx, m[addr]) }
}

// sink reads until end of stream with a large buffer, then answers with the byte count.
func sink(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	io.WriteString(c, strconv.FormatInt(n, 10))
}

// throughput sends perStream bytes on each of streams concurrent streams to the sink and
// returns GB/s from the first byte until every sink confirmed receipt.
func throughput(dial dialFunc, addr string, streams int, perStream int64) (float64, error) {
	ctx := context.Background()
	conns := make([]net.Conn, streams)
	for i := range conns {
		c, err := dial(ctx, addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	buf := make([]byte, copyChunkSize)
	start := time.Now()
	errs := make(chan error, streams)
	for _, c := range conns {
		go func() { errs <- sendAndConfirm(c, buf, perStream) }()
	}
	for range streams {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return float64(perStream*int64(streams)) / time.Since(start).Seconds() / 1e9, nil
}

func sendAndConfirm(c net.Conn, buf []byte, n int64) error {
	for left := n; left > 0; {
		k, err := c.Write(buf[:min(int64(len(buf)), left)])
		left -= int64(k)
		if err != nil {
			return err
		}
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return err
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(reply) != strconv.FormatInt(n, 10) {
		return fmt.Errorf("sink received %s bytes, sent %d", reply, n)
	}
	return nil
}

// latencyOnce dials, sends one byte, waits for its echo and closes, within 10 s.
func latencyOnce(dial dialFunc, addr string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := dial(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	var one [1]byte
	if _, err := c.Write(one[:]); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, one[:]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// newStreamLatency dials n times in a row, each time sending one byte and waiting for its echo.
func newStreamLatency(dial dialFunc, addr string, n int) (p50, p99 float64, err error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		d, err := latencyOnce(dial, addr)
		if err != nil {
			return 0, 0, err
		}
		ds = append(ds, d)
	}
	return ms(percentile(ds, 50)), ms(percentile(ds, 99)), nil
}

// pingPong sends n pingPongSize-byte messages on one stream, each after the echo of the last.
func pingPong(dial dialFunc, addr string, n int) (p50, p99 float64, err error) {
	c, err := dial(context.Background(), addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	msg := make([]byte, pingPongSize)
	got := make([]byte, pingPongSize)
	ds := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, 0, err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(start))
	}
	return us(percentile(ds, 50)), us(percentile(ds, 99)), nil
}

// idleMemory opens idleStreams streams (each proven open by a 1-byte echo) and returns the
// growth of the measured process's resident memory per stream, in KiB.
func idleMemory(p *child, dial dialFunc, addr string) (float64, error) {
	before, err := p.rss()
	if err != nil {
		return 0, err
	}
	conns := make([]net.Conn, 0, idleStreams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	sem := make(chan struct{}, 64)
	for range idleStreams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(context.Background(), addr)
			if err == nil {
				var one [1]byte
				if _, err = c.Write(one[:]); err == nil {
					_, err = io.ReadFull(c, one[:])
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if c != nil {
				conns = append(conns, c)
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	after, err := p.rss()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / idleStreams, nil
}

// cpuSeconds is the CPU time used so far by this process and the children. Children are idle
// while the paths not through them are measured, so the same sum serves every path.
func cpuSeconds(children ...*child) float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	for _, c := range children {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which is in parentheses): utime and stime are the
		// 12th and 13th, in clock ticks of 1/100 s on Linux.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / 100
	}
	return total
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func report(b *testing.B, rs []result, crypto cryptoFloor, overlayCPU float64, load0, load1 string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nztna data plane benchmark — %s\n", machine())
	fmt.Fprintf(&sb, "load average at start: %s, at end: %s (other processes share these CPUs)\n", load0, load1)
	fmt.Fprintf(&sb, "overlay path: SDK client (bench process) -> hub (bench process) -> router (separate process) -> TCP target (bench process);\n")
	fmt.Fprintf(&sb, "  TLS 1.3 on client-hub and hub-router links, Noise e2e client-router; all hops loopback TCP.\n")
	fmt.Fprintf(&sb, "floor path: the same client -> relay (bench process) -> relay (separate process) -> the same target: the overlay's hops\n")
	fmt.Fprintf(&sb, "  through relays that only read and write (%d MiB buffer; no crypto, multiplexer or splice):\n  the best any design that relays the bytes in user space over these 3 hops can reach here.\n", relayBufSize>>20)
	fmt.Fprintf(&sb, "direct path: the same client code dialing the target over plain loopback TCP.\n")
	fmt.Fprintf(&sb, "memory: RSS growth of the router process (overlay) / a plain Go TCP echo server process (direct), after GC, per idle stream.\n")
	fmt.Fprintf(&sb, "each figure but memory: the median of %d rounds, in each of which every path took its turn with 1/%d of the work.\n\n", rounds, rounds)
	fmt.Fprintf(&sb, "%-30s %15s %15s %15s %8s %8s   %-24s %-4s %s\n", "metric", "overlay", "floor", "direct", "ovl/dir", "flr/dir", "target", "met", "floor met")
	cell := func(v float64, unit string) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%9.3f %-4s", v, unit)
	}
	ratio := func(v, d float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%.2fx", v/d)
	}
	var missed, reached, selfRelative []string
	for _, r := range rs {
		if r.scaling {
			selfRelative = append(selfRelative, r.name)
		}
		met, floorMet := "", ""
		if r.meets != nil {
			met, floorMet = yesNo(r.meets(pathOverlay)), "-"
			if !math.IsNaN(r.v[pathFloor]) && !r.scaling {
				floorMet = yesNo(r.meets(pathFloor))
				floor := fmt.Sprintf("%s: floor %.3f %s", r.name, r.v[pathFloor], r.unit)
				if r.relative {
					floor = fmt.Sprintf("%s: floor = %.2fx direct", r.name, r.v[pathFloor]/r.v[pathDirect])
				}
				if r.meets(pathFloor) {
					reached = append(reached, floor+", target "+r.target+r.floorNote)
				} else {
					missed = append(missed, floor+", target "+r.target+r.floorNote)
				}
			}
		}
		d := r.v[pathDirect]
		fmt.Fprintf(&sb, "%-30s %15s %15s %15s %8s %8s   %-24s %-4s %s\n", r.name, cell(r.v[pathOverlay], r.unit), cell(r.v[pathFloor], r.unit),
			cell(d, r.unit), ratio(r.v[pathOverlay], d), ratio(r.v[pathFloor], d), r.target, met, floorMet)
		b.ReportMetric(r.v[pathOverlay], metricName(r.name, r.unit))
		if !math.IsNaN(r.v[pathFloor]) {
			b.ReportMetric(r.v[pathFloor], metricName("floor "+r.name, r.unit))
		}
	}
	fmt.Fprintf(&sb, "\ntargets the floor misses (no 3-hop userspace relay meets them on this machine, with or without crypto):\n")
	writeList(&sb, missed)
	fmt.Fprintf(&sb, "targets the floor meets (the overlay's own cost decides them):\n")
	writeList(&sb, reached)
	if len(selfRelative) > 0 {
		fmt.Fprintf(&sb, "no floor verdict (the target compares a path with itself): %s\n", strings.Join(selfRelative, ", "))
	}
	fmt.Fprintf(&sb, "(wall-clock figures: floor and overlay share the run's load; with other work on the CPUs both read high)\n")

	fmt.Fprintf(&sb, "\nleast CPU the mandated layering needs per GB moved (core-seconds, all processes; measured in this run):\n")
	fmt.Fprintf(&sb, "  %-60s %6.3f\n", "floor chain: 3 loopback hops, read/write relays (above)", crypto.chain)
	fmt.Fprintf(&sb, "  %-60s %6.3f  (%.3f per pass)\n", fmt.Sprintf("+ 4 passes %s (TLS links: seal+open x2)", crypto.tlsSuite), 4*crypto.tlsPass, crypto.tlsPass)
	fmt.Fprintf(&sb, "  %-60s %6.3f  (%.3f per pass)\n", "+ 2 passes AES-256-GCM (Noise end to end: seal+open)", 2*crypto.e2ePass, crypto.e2ePass)
	verdict := "below the bound: the layering cannot carry it on these cores"
	if crypto.maxGBs() >= 1 {
		verdict = "within the bound"
	}
	fmt.Fprintf(&sb, "  %-60s %6.3f  -> at most %.2f GB/s on %d cores (target >= 1 GB/s: %s)\n", "= lower bound", crypto.total,
		crypto.maxGBs(), runtime.NumCPU(), verdict)
	fmt.Fprintf(&sb, "  %-60s %6.3f  (%.2fx the bound)\n", "overlay measured (single-stream CPU cost above)", overlayCPU, overlayCPU/crypto.total)
	fmt.Fprintf(&sb, "  (AEAD cost: one thread sealing %d KiB frames in place, least of %d x %d MiB per cipher; opening costs the same.)\n", aeadFrame>>10, aeadRepeat, aeadBytes>>20)
	b.ReportMetric(crypto.total, "overlay_CPU_lower_bound_s/GB")
	fmt.Print(sb.String())
}

func writeList(sb *strings.Builder, items []string) {
	if len(items) == 0 {
		sb.WriteString("  none\n")
	}
	for _, it := range items {
		fmt.Fprintf(sb, "  %s\n", it)
	}
}

func metricName(name, unit string) string {
	return strings.NewReplacer(" ", "_", "(", "", ")", "", "+", "", "-", "_").Replace(name) + "_" + unit
}

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// child is a helper process: the router or a plain echo server.
type child struct {
	cmd  *exec.Cmd
	in   io.Writer
	out  *bufio.Reader
	addr string
}

func startChild(b *testing.B, role string, env ...string) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+role)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := c.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		b.Fatalf("%s process did not start: %q %v", role, line, err)
	}
	c.addr = strings.TrimSpace(strings.TrimPrefix(line, "ready"))
	return c
}

// rss asks the child to collect garbage and report its resident set size in KiB.
func (c *child) rss() (int64, error) {
	if _, err := io.WriteString(c.in, "rss\n"); err != nil {
		return 0, err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// childCommands answers "rss" requests on stdin until stdin closes, then exits.
func childCommands() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "rss" {
			runtime.GC()
			debug.FreeOSMemory()
			fmt.Println(readRSS())
		}
	}
	os.Exit(0)
}

func readRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// routerConfig is what the router process needs, passed as a JSON file.
type routerConfig struct {
	Hub      string            `json:"hub"`
	ChainPEM string            `json:"chain_pem"`
	KeyPEM   string            `json:"key_pem"`
	CAPEM    string            `json:"ca_pem"`
	Services []control.Service `json:"services"`
}

func startRouterChild(b *testing.B, s *stack.Stack, id string, services []control.Service) *child {
	return startRouterChildVia(b, s, s.HubAddr, id, services)
}

// startRouterChildVia starts a router process that links to the hub at hub (the stack's hub
// itself, or a relay in front of it).
func startRouterChildVia(b *testing.B, s *stack.Stack, hub, id string, services []control.Service) *child {
	iss, key, err := s.PKI.CA.IssueServer(api.KindRouter, id, nil, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(routerConfig{Hub: hub, ChainPEM: string(iss.ChainPEM), KeyPEM: string(keyPEM), CAPEM: string(s.PKI.CA.CertPEM), Services: services})
	path := filepath.Join(b.TempDir(), "router.json")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		b.Fatal(err)
	}
	return startChild(b, "router", "ZTNA_BENCH_ROUTER_CONFIG="+path)
}

func runRouterChild() {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "router:", err); os.Exit(1) }
	raw, err := os.ReadFile(os.Getenv("ZTNA_BENCH_ROUTER_CONFIG"))
	if err != nil {
		fail(err)
	}
	var cfg routerConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fail(err)
	}
	key, err := pki.ParseKeyPEM([]byte(cfg.KeyPEM))
	if err != nil {
		fail(err)
	}
	cert, err := pki.TLSCertificate([]byte(cfg.ChainPEM), key)
	if err != nil {
		fail(err)
	}
	ca, err := pki.ParseCertPEM([]byte(cfg.CAPEM))
	if err != nil {
		fail(err)
	}
	slot := pki.NewCertSlot(cert)
	set := targets.NewSet()
	set.Replace(cfg.Services)
	h := hosting.New(hosting.Config{
		Endpoint: e2e.NewEndpoint(slot, ca),
		Dialer:   &targets.Dialer{Targets: set, Resolver: net.DefaultResolver},
		Link:     fabric.LinkConfig{Credentials: fabric.Credentials{Cert: slot, CA: ca}},
	})
	h.SetHubs(context.Background(), []string{cfg.Hub})
	fmt.Println("ready")
	childCommands()
}

func startEchoChild(b *testing.B) *child {
	return startChild(b, "echo")
}

func runEchoChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go stack.Echo(c)
		}
	}()
	fmt.Println("ready", ln.Addr().String())
	childCommands()
}
