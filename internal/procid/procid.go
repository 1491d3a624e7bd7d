// Package procid identifies a process across pid reuse — its pid plus its start time in clock
// ticks since boot (field 22 of /proc/<pid>/stat) — so that a pid recorded in a state file is
// never mistaken for an unrelated process that got the same pid later.
package procid

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Process is a recorded process; its JSON form is what state files keep.
type Process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Of records the running process pid.
func Of(pid int) (Process, error) {
	start, _, err := inspect(pid)
	return Process{PID: pid, StartTime: start}, err
}

// inspect reads a process's start time and state letter.
func inspect(pid int) (startTime uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may contain spaces and parentheses; fields resume after
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unparsable /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	startTime, err = strconv.ParseUint(string(fields[19]), 10, 64)
	return startTime, fields[0][0], err
}

// Alive reports whether the recorded process still runs (a zombie has exited).
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	start, state, err := inspect(p.PID)
	return err == nil && start == p.StartTime && state != 'Z' && state != 'X'
}

// StopSession ends the process's session (the process leads its own process group): SIGTERM,
// then SIGKILL after grace.
func (p Process) StopSession(grace time.Duration) {
	if !p.Alive() {
		return
	}
	syscall.Kill(-p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for p.Alive() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.Alive() {
		syscall.Kill(-p.PID, syscall.SIGKILL)
		for i := 0; i < 100 && p.Alive(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
