package loadgen

import (
	"os"
	"testing"
	"time"
)

func TestCPUBetween(t *testing.T) {
	t.Parallel()
	a := cpuSample{server: 1 * time.Second, self: 2 * time.Second, busy: 10 * time.Second, idle: 5 * time.Second, serverOK: true, selfOK: true, machineOK: true}
	b := cpuSample{server: 3 * time.Second, self: 3 * time.Second, busy: 14 * time.Second, idle: 6 * time.Second, serverOK: true, selfOK: true, machineOK: true}
	got := cpuBetween(a, b, 2*time.Second)
	want := CPU{Server: 1, Generator: 0.5, Other: 0.5, Idle: 0.5}
	if got == nil || *got != want {
		t.Errorf("cpuBetween = %+v, want %+v", got, want)
	}
	a.serverOK = false
	if got := cpuBetween(a, b, 2*time.Second); got == nil || got.Server != -1 || got.Other != -1 {
		t.Errorf("cpuBetween without the server = %+v, want Server and Other -1", got)
	}
	a.machineOK = false
	if got := cpuBetween(a, b, 2*time.Second); got != nil {
		t.Errorf("cpuBetween without /proc/stat = %+v, want nil", got)
	}
}

func TestSampleCPU(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s := sampleCPU([]int{os.Getpid()})
	if !s.serverOK || !s.selfOK || !s.machineOK {
		t.Errorf("sampleCPU(own pid) = %+v, want every figure read", s)
	}
}
