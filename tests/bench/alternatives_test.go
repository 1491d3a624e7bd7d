package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/enroll"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/tests/dataplane/stack"
)

// BenchmarkAlternatives measures, in one run and the same way as BenchmarkDataPlane, the paths
// a user could take to reach a private TCP service, each against direct TCP:
//
//   - sdk: the Go SDK in the benchmark process → hub (benchmark process) → router (separate
//     process) → target;
//   - tunnel: a program connects to the address `ztna tunnel` (separate process, the real CLI)
//     gave the service's name → SDK in the tunnel → hub → router → target;
//   - ssh -L: an OpenSSH local forward (ssh -N -L, aes256-gcm@openssh.com) to a throw-away sshd
//     on loopback (host and user keys generated for the run) that connects to the target;
//   - stunnel: a stunnel client/server pair (TLS 1.3, TLS_AES_256_GCM_SHA384, server certificate
//     verified) in front of the target.
//
// Targets are the same sink and echo servers in the benchmark process for every path. CPU cost
// is the CPU time of the benchmark process and every process it started (router, tunnel, ssh,
// sshd and its session processes, stunnel) per GB moved.
func BenchmarkAlternatives(b *testing.B) {
	for range b.N {
		alternativesOnce(b)
	}
}

// path is one way to reach the targets: dial maps the target's direct address to the path's.
type path struct {
	name string
	dial dialFunc
}

func alternativesOnce(b *testing.B) {
	load0 := loadavg()
	s := stack.Start(b, stack.Options{})
	sinkPort, echoPort := stack.Serve(b, sink), stack.Serve(b, stack.Echo)
	sinkAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sinkPort))
	echoAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(echoPort))
	// The tunnel answers DNS for service names, so the services are named: "localhost" is the
	// one name the router process resolves to the targets without a DNS server of its own.
	const name = "localhost"
	services := []control.Service{stack.Service("sink", name, sinkPort), stack.Service("echo", name, echoPort)}
	startRouterChild(b, s, "r1", services)
	s.WaitRouters("r1")
	s.Update(stack.Policy(services, []string{"r1"}, []string{"bench"}))
	dir := b.TempDir()

	c := s.Client("bench")
	sdk := func(ctx context.Context, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		return c.Dial(ctx, net.JoinHostPort(name, port))
	}
	paths := []path{
		{"direct", dialDirect},
		{"sdk", sdk},
		{"tunnel", redirect(startZtnaTunnel(b, s, dir, name, sinkAddr, echoAddr))},
		{"ssh -L", redirect(startSSHForward(b, dir, sinkAddr, echoAddr))},
		{"stunnel", redirect(startStunnel(b, dir, sinkAddr, echoAddr))},
	}
	for _, p := range paths { // warm up: links, caches, ssh channels
		for range 20 {
			if _, err := latencyOnce(p.dial, echoAddr); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
		}
	}

	type row struct {
		name, unit string
		better     string // "higher" or "lower"
		values     []float64
	}
	var rows []*row
	var pathNames []string
	var dials []dialFunc
	for _, p := range paths {
		pathNames, dials = append(pathNames, p.name), append(dials, p.dial)
	}
	measure := func(names []string, units []string, better string, f func(dialFunc) ([]float64, error)) {
		rs := make([]*row, len(names))
		for i := range names {
			rs[i] = &row{name: names[i], unit: units[i], better: better}
		}
		for _, figures := range inTurn(b, names[0], pathNames, dials, f) {
			for i, v := range figures {
				rs[i].values = append(rs[i].values, v)
			}
		}
		rows = append(rows, rs...)
	}
	measure([]string{"single-stream throughput", "single-stream CPU cost"}, []string{"GB/s", "s/GB"}, "higher",
		func(dial dialFunc) ([]float64, error) {
			cpu0 := treeCPUSeconds()
			gbs, err := throughput(dial, sinkAddr, 1, singleBytes/rounds)
			return []float64{gbs, (treeCPUSeconds() - cpu0) / (singleBytes / rounds / 1e9)}, err
		})
	rows[len(rows)-1].better = "lower"
	measure([]string{"16-stream aggregate"}, []string{"GB/s"}, "higher", func(dial dialFunc) ([]float64, error) {
		v, err := throughput(dial, sinkAddr, multiStreams, multiBytes/rounds)
		return []float64{v}, err
	})
	measure([]string{"new stream p50 (dial+1B echo)", "new stream p99"}, []string{"ms", "ms"}, "lower", func(dial dialFunc) ([]float64, error) {
		p50, p99, err := newStreamLatency(dial, echoAddr, latencyDials/rounds)
		return []float64{p50, p99}, err
	})
	measure([]string{"ping-pong 64 B p50", "ping-pong 64 B p99"}, []string{"µs", "µs"}, "lower", func(dial dialFunc) ([]float64, error) {
		p50, p99, err := pingPong(dial, echoAddr, pingPongs/rounds)
		return []float64{p50, p99}, err
	})

	var sb strings.Builder
	fmt.Fprintf(&sb, "\nztna vs. alternatives — %s\n", machine())
	fmt.Fprintf(&sb, "load average at start: %s, at end: %s (other processes share these CPUs)\n", load0, loadavg())
	fmt.Fprintf(&sb, "sdk: Go SDK (bench process) -> hub (bench process) -> router (process) -> target\n")
	fmt.Fprintf(&sb, "tunnel: program -> ztna tunnel (process, local address from its DNS) -> hub -> router (process) -> target\n")
	fmt.Fprintf(&sb, "ssh -L: program -> ssh -N -L (process, aes256-gcm@openssh.com) -> sshd (process) -> target\n")
	fmt.Fprintf(&sb, "stunnel: program -> stunnel client (process) -> TLS 1.3 AES-256-GCM -> stunnel server (process) -> target\n")
	fmt.Fprintf(&sb, "all hops loopback TCP; (x) = ratio to direct; CPU cost = core-seconds per GB of the bench process and all its child processes\n")
	fmt.Fprintf(&sb, "each figure: the median of %d rounds, in each of which every path took its turn with 1/%d of the work\n\n", rounds, rounds)
	fmt.Fprintf(&sb, "%-36s", "metric")
	for _, p := range paths {
		fmt.Fprintf(&sb, " %22s", p.name)
	}
	sb.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-36s", r.name+" ("+r.unit+")")
		for i, v := range r.values {
			cell := fmt.Sprintf("%.3f", v)
			if i > 0 {
				cell += fmt.Sprintf(" (%.2fx)", v/r.values[0])
			}
			fmt.Fprintf(&sb, " %22s", cell)
			b.ReportMetric(v, metricName(paths[i].name+" "+r.name, r.unit))
		}
		sb.WriteString("\n")
	}
	// The issue's target: the tunnel path ahead of both the SSH forward and stunnel.
	col := func(name string) int {
		for i, p := range paths {
			if p.name == name {
				return i
			}
		}
		return -1
	}
	tun, ssh, stn := col("tunnel"), col("ssh -L"), col("stunnel")
	fmt.Fprintf(&sb, "\ntunnel ahead of ssh -L and stunnel (target):\n")
	for _, r := range rows {
		ahead := func(o int) bool {
			if r.better == "higher" {
				return r.values[tun] > r.values[o]
			}
			return r.values[tun] < r.values[o]
		}
		fmt.Fprintf(&sb, "  %-30s %s\n", r.name, yesNo(ahead(ssh) && ahead(stn)))
	}
	fmt.Print(sb.String())
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// startZtnaTunnel runs `ztna tunnel` for a "bench" identity of the stack's network, resolves
// the services' name through its DNS server and returns the target → tunnel address map.
func startZtnaTunnel(b *testing.B, s *stack.Stack, dir, name string, targets ...string) map[string]string {
	idFile := filepath.Join(dir, "bench.identity")
	writeIdentity(b, s, "bench", idFile)
	cmd := exec.Command(ztnaBinary(b, dir), "tunnel", "--identity", idFile, "--dns-listen", "127.0.0.1:0",
		"--upstream", "127.0.0.1:9", "--log-level", "warn") // nothing but the service name is asked
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start(b, cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("ztna tunnel: %v", err)
	}
	go drain(out)
	f := strings.Fields(line) // "DNS on 127.0.0.1:PORT (UDP and TCP), ..."
	if len(f) < 3 || f[0] != "DNS" {
		b.Fatalf("ztna tunnel printed %q", line)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := new(dns.Client).Exchange(m, f[2])
	if err != nil || len(resp.Answer) != 1 {
		b.Fatalf("resolve %s through the tunnel: %v %v", name, resp, err)
	}
	local := resp.Answer[0].(*dns.A).A.String()
	out2 := map[string]string{}
	for _, t := range targets {
		_, port, _ := net.SplitHostPort(t)
		out2[t] = net.JoinHostPort(local, port)
		waitListening(b, out2[t])
	}
	return out2
}

func drain(r interface{ Read([]byte) (int, error) }) {
	buf := make([]byte, 4096)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// writeIdentity writes the identity file `ztna identity enroll` would write for id.
func writeIdentity(b *testing.B, s *stack.Stack, id, path string) {
	iss, key, err := s.PKI.CA.IssueServer(api.KindIdentity, id, nil, 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(enroll.IdentityFile{
		Config: api.EnrolledConfig{ID: id, Kind: api.KindIdentity, Name: id, Fabric: []string{s.HubAddr},
			CAFingerprint: s.PKI.CA.Fingerprint(), CertExpiresAt: time.Now().Add(24 * time.Hour)},
		Key: string(keyPEM), Cert: string(iss.ChainPEM), CA: string(s.PKI.CA.CertPEM),
	})
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.Fatal(err)
	}
}

// ztnaBinary is $ZTNA_BIN_DIR/ztna (make bench builds it) or a fresh build.
func ztnaBinary(b *testing.B, dir string) string {
	if d := os.Getenv("ZTNA_BIN_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "ztna")); err == nil {
			return filepath.Join(d, "ztna")
		}
	}
	bin := filepath.Join(dir, "ztna")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ztna/ztna/cmd/ztna").CombinedOutput(); err != nil {
		b.Fatalf("build ztna: %v\n%s", err, out)
	}
	return bin
}

// startSSHForward runs a throw-away sshd on loopback and an `ssh -N -L` per target, and
// returns the target → forwarded local address map.
func startSSHForward(b *testing.B, dir string, targets ...string) map[string]string {
	sshd := lookTool(b, "/usr/sbin/sshd", "sshd")
	for _, k := range []string{"host_key", "user_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			b.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	userPub, _ := os.ReadFile(filepath.Join(dir, "user_key.pub"))
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	writeFile(b, filepath.Join(dir, "authorized_keys"), string(userPub))
	// sshd refuses to start without its privilege separation directory (Debian: /run/sshd).
	os.MkdirAll("/run/sshd", 0o755)
	port := freePort(b)
	cfg := filepath.Join(dir, "sshd_config")
	writeFile(b, cfg, strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"Ciphers aes256-gcm@openssh.com",
		"LogLevel ERROR",
	}, "\n")+"\n")
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfg)
	cmd.Stderr = os.Stderr
	start(b, cmd)

	writeFile(b, filepath.Join(dir, "known_hosts"), fmt.Sprintf("[127.0.0.1]:%d %s", port, hostPub))
	u, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"-N", "-p", strconv.Itoa(port), "-i", filepath.Join(dir, "user_key"),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "Ciphers=aes256-gcm@openssh.com", "-o", "Compression=no", "-o", "ExitOnForwardFailure=yes",
		"-o", "ConnectionAttempts=15"} // once a second while sshd starts
	local := map[string]string{}
	for _, t := range targets {
		local[t] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
		args = append(args, "-L", local[t]+":"+t)
	}
	cmd = exec.Command("ssh", append(args, u.Username+"@127.0.0.1")...)
	cmd.Stderr = os.Stderr
	start(b, cmd)
	for _, l := range local {
		waitListening(b, l)
	}
	return local
}

// startStunnel runs a stunnel server in front of each target and a stunnel client that
// verifies the server's certificate, and returns the target → client address map.
func startStunnel(b *testing.B, dir string, targets ...string) map[string]string {
	bin := lookTool(b, "stunnel4", "stunnel")
	certFile, keyFile := filepath.Join(dir, "stunnel.crt"), filepath.Join(dir, "stunnel.key")
	selfSigned(b, certFile, keyFile)
	common := "foreground = yes\npid =\nsyslog = no\ndebug = 3\nsslVersionMin = TLSv1.3\nciphersuites = TLS_AES_256_GCM_SHA384\n"
	server, client := common, common
	local := map[string]string{}
	var tlsAddrs []string
	for i, t := range targets {
		tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
		tlsAddrs = append(tlsAddrs, tlsAddr)
		local[t] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
		server += fmt.Sprintf("[s%d]\naccept = %s\nconnect = %s\ncert = %s\nkey = %s\n", i, tlsAddr, t, certFile, keyFile)
		client += fmt.Sprintf("[c%d]\nclient = yes\naccept = %s\nconnect = %s\nverifyPeer = yes\nCAfile = %s\n", i, local[t], tlsAddr, certFile)
	}
	for _, c := range []struct {
		name, conf string
		addrs      []string
	}{{"server", server, tlsAddrs}, {"client", client, slices.Collect(maps.Values(local))}} {
		path := filepath.Join(dir, "stunnel-"+c.name+".conf")
		writeFile(b, path, c.conf)
		cmd := exec.Command(bin, path)
		cmd.Stderr = os.Stderr
		start(b, cmd)
		for _, a := range c.addrs { // the server first: the client's probes must find it
			waitListening(b, a)
		}
	}
	return local
}

// selfSigned writes a P-256 self-signed server certificate for 127.0.0.1 and its key.
func selfSigned(b *testing.B, certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(b, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	os.Chmod(keyFile, 0o600)
}

// lookTool returns the first of names found, or fails saying how to install it.
func lookTool(b *testing.B, names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	b.Fatalf("%s not installed: run scripts/deps.sh bench", names[len(names)-1])
	return ""
}

// start starts cmd and kills it when the benchmark ends.
func start(b *testing.B, cmd *exec.Cmd) {
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", cmd.Path, err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func writeFile(b *testing.B, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
}

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts TCP connections.
func waitListening(b *testing.B, addr string) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// treeCPUSeconds is the CPU time used so far by this process and all its descendants that
// are still running (the router, the tunnel, ssh, sshd and its session processes, stunnel).
func treeCPUSeconds() float64 {
	type proc struct {
		ppid int
		cpu  float64
	}
	procs := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the command name (in parentheses): state, ppid, ..., utime (12th), stime (13th),
		// in clock ticks of 1/100 s on Linux.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		procs[pid] = proc{ppid: ppid, cpu: (ut + st) / 100}
	}
	self := os.Getpid()
	total := 0.0
	for pid, p := range procs {
		for a := pid; a > 1; a = procs[a].ppid {
			if a == self {
				total += p.cpu
				break
			}
			if _, ok := procs[a]; !ok {
				break
			}
		}
	}
	return total
}
