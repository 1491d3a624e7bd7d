package local

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// process identifies a process across pid reuse: the pid plus its start time in clock ticks
// since boot (field 22 of /proc/<pid>/stat).
type process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// inspect reads a process's start time and state letter.
func inspect(pid int) (startTime uint64, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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

func startProcess(pid int) (process, error) {
	st, _, err := inspect(pid)
	return process{PID: pid, StartTime: st}, err
}

// alive reports whether the recorded process still runs (a zombie has exited).
func (p process) alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, state, err := inspect(p.PID)
	return err == nil && st == p.StartTime && state != 'Z' && state != 'X'
}
