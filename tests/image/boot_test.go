package image

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/logging"
	"github.com/ztna/ztna/internal/pki"
)

// guestControllerAddr is where the booted image reaches the controller: QEMU's user-mode network
// forwards each guest connection to this address to the controller on the host's loopback, and
// forwards nothing else (restrict=on), so the guest has no other way out.
const guestControllerAddr = "10.0.2.100"

// relayEnv makes the test binary a one-connection TCP relay (stdin/stdout <-> the address),
// which QEMU spawns per forwarded guest connection.
const relayEnv = "ZTNA_TEST_RELAY"

// relay copies stdin to addr and addr to stdout until either side closes.
func relay(addr string) int {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	done := make(chan struct{})
	go func() { io.Copy(os.Stdout, conn); close(done) }()
	io.Copy(conn, os.Stdin)
	conn.(*net.TCPConn).CloseWrite()
	<-done
	return 0
}

// TestImageBootEnrol boots the local image under QEMU (software emulation), hands it a one-time
// registration key as /etc/ztna/registration-key, and waits until the router it runs is online
// at a real controller on the host and has reported the image's attestation. Slow (several
// minutes of emulated boot): run by `make test-image` (ZTNA_TEST_IMAGE=1).
func TestImageBootEnrol(t *testing.T) {
	if os.Getenv("ZTNA_TEST_IMAGE") == "" {
		t.Skip("boots a VM under software emulation; run with make test-image (ZTNA_TEST_IMAGE=1)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("qemu-system-x86_64 not installed (scripts/deps.sh image): %v", err)
	}
	img := localImage(t)
	ctl := startController(t, bin(t, "ztna-controller"), img.buildKey)

	ctx := context.Background()
	router, err := ctl.api.CreateRouter(ctx, api.RouterCreate{Name: "image-boot", Roles: []string{"edge"}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ctl.api.CreateRegistrationKey(ctx, api.RegistrationKeyCreate{RouterID: router.ID, TTLSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}

	disk := withKeyFile(t, img.path, key.Key)
	serial := filepath.Join(t.TempDir(), "serial.log")
	vmDone := bootVM(t, disk, serial, ctl.ports)

	start := time.Now()
	var got *api.Router
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		if got, err = ctl.api.GetRouter(ctx, router.ID); err == nil && got.Status == api.RouterOnline {
			break
		}
		select {
		case <-vmDone:
			t.Fatalf("qemu exited before the router came online\nserial console:\n%s", tailFile(serial, 60))
		case <-time.After(2 * time.Second):
		}
	}
	if got == nil || got.Status != api.RouterOnline {
		t.Fatalf("router did not come online within 15 minutes (last: %+v, %v)\nserial console:\n%s\ncontroller log:\n%s",
			got, err, tailFile(serial, 60), ctl.log.String())
	}
	elapsed(t, "boot to router online", start)

	var a control.Attestation
	if err := json.Unmarshal(got.Attestation, &a); err != nil {
		t.Fatalf("attestation %s: %v", got.Attestation, err)
	}
	if a.RouterVersion != RouterVersion || a.Cloud != "local" || !strings.HasPrefix(a.BaseImage, "debian-bookworm-amd64-") {
		t.Errorf("controller got attestation %+v, want the image's (router %s, local, debian-bookworm base)", a, RouterVersion)
	}
	if !got.AttestationVerified || got.AttestationReason != "verified" {
		t.Errorf("attestation_verified %v (%s): the image is signed by the build key the controller trusts", got.AttestationVerified, got.AttestationReason)
	}
	k, err := ctl.api.GetRegistrationKey(ctx, key.ID)
	if err != nil || k.State != api.KeyUsed {
		t.Errorf("registration key state %v (%v), want used", k, err)
	}
}

// withKeyFile copies the image to a raw disk and writes the key where the file metadata source
// reads it, root-only as an operator would.
func withKeyFile(t *testing.T, qcow2, key string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw)
	loop := run(t, "losetup", "--find", "--show", "--partscan", raw)
	defer exec.Command("losetup", "--detach", loop).Run()
	run(t, "partx", "--update", loop)
	mnt := t.TempDir()
	run(t, "mount", loop+"p1", mnt)
	err := os.WriteFile(filepath.Join(mnt, "etc/ztna/registration-key"), []byte(key+"\n"), 0o600)
	run(t, "umount", mnt)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// bootVM starts QEMU with software emulation; the guest's only network path leads to the
// controller's three ports. The channel is closed when QEMU exits.
func bootVM(t *testing.T, disk, serial string, ports []string) <-chan struct{} {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	netdev := "user,id=n0,restrict=on"
	for _, p := range ports {
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%s-cmd:env %s=127.0.0.1:%s %s", guestControllerAddr, p, relayEnv, p, self)
	}
	cmd := exec.Command("qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none", "-serial", "file:"+serial,
		"-drive", "file="+disk+",if=virtio,format=raw",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0")
	out := new(logging.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("qemu output:\n%s", out.String())
		}
	})
	return done
}

// controllerProc is a ztna-controller on the host's loopback that advertises itself at
// guestControllerAddr.
type controllerProc struct {
	api   *apiclient.Client
	ports []string // edge, control, fabric
	log   *logging.Buffer
}

// startController runs ztna-controller trusting buildKey's image attestations.
func startController(t *testing.T, binary string, buildKey ed25519.PublicKey) *controllerProc {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(buildKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "build-key.pem")
	write(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	ports := freePorts(t, 3)
	token := make([]byte, 24)
	rand.Read(token)
	tokenFile := filepath.Join(dir, "token")
	write(t, tokenFile, hex.EncodeToString(token))
	config := filepath.Join(dir, "controller.yaml")
	write(t, config, fmt.Sprintf(`name: image-test
data_dir: %s
listen:
  edge: "127.0.0.1:%s"
  control: "127.0.0.1:%s"
  fabric: "127.0.0.1:%s"
  metrics: ""
hosts: ["%s", "127.0.0.1"]
token_file: %s
attestation_keys: [%q]
log:
  format: text
  level: info
`, filepath.Join(dir, "data"), ports[0], ports[1], ports[2], guestControllerAddr, tokenFile, keyFile))
	log := new(logging.Buffer)
	cmd := exec.Command(binary, "run", "--config", config)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	caFile := filepath.Join(dir, "data", "ca.pem")
	var fingerprint string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if b, err := os.ReadFile(caFile); err == nil {
			if block, _ := pem.Decode(b); block != nil {
				fingerprint = pki.Fingerprint(block.Bytes)
				break
			}
		}
	}
	if fingerprint == "" {
		t.Fatalf("controller wrote no CA in 30s:\n%s", log.String())
	}
	client, err := apiclient.New("https://127.0.0.1:"+ports[0], hex.EncodeToString(token), fingerprint, apiclient.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := client.ListRouters(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("controller API not ready: %v\n%s", err, log.String())
		}
	}
	return &controllerProc{api: client, ports: ports, log: log}
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, p)
		defer ln.Close()
	}
	return ports
}

func tailFile(path string, lines int) string {
	b, _ := os.ReadFile(path)
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}
