package ztnaprovider

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// bootableVM is a VM of a cloud fake that runs: what its first boot needs.
type bootableVM struct {
	id string
	// source is the platform for `ztna-router bootstrap --from-metadata`.
	source string
	// imds starts a metadata service fake serving this VM's metadata and returns its URL.
	imds func() string
}

// vmBooter stands in for a cloud's hypervisor in tests against the cloud API fakes: every VM
// that runs boots a real ztna-router (bootstrap from the VM's metadata, then run), and a VM that
// is gone has its router killed. So a router host created through a fake really comes online.
type vmBooter struct {
	t    *testing.T
	bin  string
	dir  string
	list func() []bootableVM

	mu      sync.Mutex
	routers map[string]*exec.Cmd // nil while booting
	boots   int
	done    chan struct{}
	stopped chan struct{}
}

func bootVMs(t *testing.T, list func() []bootableVM) {
	b := &vmBooter{t: t, bin: hostTestBinary(t, "ztna-router"), dir: t.TempDir(), list: list,
		routers: map[string]*exec.Cmd{}, done: make(chan struct{}), stopped: make(chan struct{})}
	go b.loop()
	t.Cleanup(b.stop)
}

func (b *vmBooter) loop() {
	defer close(b.stopped)
	for {
		running := map[string]bool{}
		for _, vm := range b.list() {
			running[vm.id] = true
			b.mu.Lock()
			if _, booted := b.routers[vm.id]; !booted {
				b.routers[vm.id] = nil
				go b.boot(vm)
			}
			b.mu.Unlock()
		}
		b.mu.Lock()
		for id, cmd := range b.routers {
			if !running[id] && cmd != nil {
				// The VM is gone; a VM of the same id later (GCP ids are names) boots afresh.
				cmd.Process.Kill()
				delete(b.routers, id)
			}
		}
		b.mu.Unlock()
		select {
		case <-b.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *vmBooter) boot(vm bootableVM) {
	b.mu.Lock()
	b.boots++
	state := filepath.Join(b.dir, fmt.Sprintf("%s-%d", filepath.Base(vm.id), b.boots)) // a fresh disk per boot
	b.mu.Unlock()
	log, err := os.Create(state + ".log")
	if err != nil {
		b.t.Error(err)
		return
	}
	defer log.Close()
	boot := exec.Command(b.bin, "bootstrap", "--from-metadata", vm.source, "--metadata-url", vm.imds(), "--state-dir", state, "--timeout", "1m")
	boot.Stdout, boot.Stderr = log, log
	if err := boot.Run(); err != nil {
		out, _ := os.ReadFile(state + ".log")
		b.t.Logf("VM %s: bootstrap failed: %v\n%s", vm.id, err, out)
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Error(err)
		return
	}
	local := l.Addr().String()
	l.Close()
	run := exec.Command(b.bin, "run", "--state-dir", state, "--local-addr", local)
	run.Stdout, run.Stderr = log, log
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.done:
		return
	default:
	}
	if err := run.Start(); err != nil {
		b.t.Error(err)
		return
	}
	go run.Wait()
	b.routers[vm.id] = run
}

func (b *vmBooter) stop() {
	close(b.done)
	<-b.stopped
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cmd := range b.routers {
		if cmd != nil {
			cmd.Process.Kill()
		}
	}
}
