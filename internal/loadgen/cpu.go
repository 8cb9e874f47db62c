package loadgen

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// CPU is how many cores were busy during a measured window, from /proc
// (Linux only). Where a figure is unknown it is negative.
type CPU struct {
	// Server is the server process's user and system time per second
	// (the sum of the servers' when a run has several).
	Server float64
	// Generator is the bench process's (the load generator's).
	Generator float64
	// Other is the machine's user and system time that neither process
	// used: other processes, which disturb the measurement. Interrupt
	// time (loopback networking) is not counted in it.
	Other float64
	// Idle is the machine's idle time per second.
	Idle float64
}

// clockTick is USER_HZ, the unit of /proc's CPU times; 100 on every
// Linux platform Go supports.
const clockTick = time.Second / 100

// cpuSample is a snapshot of CPU times.
type cpuSample struct {
	// server is the sum of servers, each process's time; serverOK is
	// false unless every one was read.
	server           time.Duration
	servers          []time.Duration
	self             time.Duration
	busy, idle       time.Duration
	serverOK, selfOK bool
	machineOK        bool
}

func sampleCPU(serverPIDs []int) cpuSample {
	var s cpuSample
	if len(serverPIDs) > 0 {
		s.serverOK = true
		s.servers = make([]time.Duration, len(serverPIDs))
		for i, pid := range serverPIDs {
			d, ok := procCPU(strconv.Itoa(pid))
			s.servers[i] = d
			s.server += d
			s.serverOK = s.serverOK && ok
		}
	}
	s.self, s.selfOK = procCPU("self")
	s.busy, s.idle, s.machineOK = machineCPU()
	return s
}

// serverCores is the cores server i of the samples used between them;
// -1 where unknown.
func serverCores(a, b cpuSample, i int, elapsed time.Duration) float64 {
	if !a.serverOK || !b.serverOK || i >= len(a.servers) || i >= len(b.servers) || elapsed <= 0 {
		return -1
	}
	return (b.servers[i] - a.servers[i]).Seconds() / elapsed.Seconds()
}

// cpuBetween turns two samples taken elapsed apart into cores.
func cpuBetween(a, b cpuSample, elapsed time.Duration) *CPU {
	if !a.machineOK || !b.machineOK || !a.selfOK || !b.selfOK || elapsed <= 0 {
		return nil
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / elapsed.Seconds() }
	c := &CPU{Server: -1, Other: -1, Generator: cores(b.self - a.self), Idle: cores(b.idle - a.idle)}
	if a.serverOK && b.serverOK {
		c.Server = cores(b.server - a.server)
		c.Other = max(0, cores((b.busy-a.busy)-(b.server-a.server)-(b.self-a.self)))
	}
	return c
}

// procCPU returns the user plus system time of /proc/<pid>.
func procCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may contain spaces: the fields
	// after it start with the state (field 3); utime and stime are 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * clockTick, true
}

// machineCPU returns the machine's user+nice+system time and its idle
// time (idle+iowait), from the first line of /proc/stat.
func machineCPU() (busy, idle time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 6 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	var v [5]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(string(f[i+1]), 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return time.Duration(v[0]+v[1]+v[2]) * clockTick, time.Duration(v[3]+v[4]) * clockTick, true
}
