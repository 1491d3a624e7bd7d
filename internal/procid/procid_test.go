package procid

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/testenv"
)

func TestAliveFollowsTheProcessNotThePID(t *testing.T) {
	self, err := Of(os.Getpid())
	if err != nil || !self.Alive() {
		t.Fatalf("this process: %+v alive=%v err=%v", self, self.Alive(), err)
	}
	// The same pid with another start time is another process: a reused pid.
	if (Process{PID: self.PID, StartTime: self.StartTime + 1}).Alive() {
		t.Fatal("a reused pid passes for the recorded process")
	}
	if (Process{}).Alive() {
		t.Fatal("the zero Process is alive")
	}
}

func TestStopSessionEndsTheProcess(t *testing.T) {
	testenv.Integration(t, "a sleep process")
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p, err := Of(cmd.Process.Pid)
	if err != nil || !p.Alive() {
		t.Fatalf("child: %+v %v", p, err)
	}
	p.StopSession(2 * time.Second)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the process outlived StopSession")
	}
	if p.Alive() {
		t.Fatal("a stopped (reaped) process is alive")
	}
}
