//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// sampledRun is a finished run of the cnitrace binary with its RSS samples.
type sampledRun struct {
	cmd    *exec.Cmd // exited: ProcessState is set
	stdout []byte
	rssMB  []float64 // VmRSS, once a second
	wall   time.Duration
}

// sampledTrace runs the cnitrace binary with args to its end, sampling its
// VmRSS every second, for the sections that watch its memory.
func (b *bench) sampledTrace(ctx context.Context, args []string) (*sampledRun, error) {
	cmd := exec.CommandContext(ctx, b.cfg.bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rss := sampleRSS(cmd.Process.Pid, time.Second, cmd)
	return &sampledRun{cmd: cmd, stdout: stdout.Bytes(), rssMB: rss, wall: time.Since(start)}, nil
}

// sampleRSS reads the resident set of pid every period until cmd exits.
func sampleRSS(pid int, period time.Duration, cmd *exec.Cmd) []float64 {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var samples []float64
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return samples
		case <-tick.C:
			if mb, ok := rssMB(pid); ok {
				samples = append(samples, mb)
			}
		}
	}
}

func rssMB(pid int) (float64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// scaleResult is sustained probing at 1 ms with memory watched.
type scaleResult struct {
	Probes       int     `json:"probes"`
	IntervalMS   float64 `json:"interval_ms"`
	ProbesPerSec float64 `json:"probes_per_second"` // sent over the whole wall time
	Received     int     `json:"received"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	rssCurve
	RateVerdict verdict `json:"rate_verdict"`
}

// scaleLimitMB is the ceiling on the sustained run's true peak.
const scaleLimitMB = 64

// exactSettle is how long after the report's first 10,000 probes its
// memory settles (their timelines in, the rest sketched).
const exactSettle = 2 * time.Second

func (b *bench) scale(ctx context.Context, l *lab.Lab) (*scaleResult, error) {
	s := &scaleResult{Probes: b.counts(60000, 3000), IntervalMS: 1}
	s.PeriodSeconds, s.LimitMB = 1, scaleLimitMB
	args := append(traceArgs(l), "--count", strconv.Itoa(s.Probes), "--interval", "1ms")
	run, err := b.sampledTrace(ctx, args)
	if err != nil {
		return nil, err
	}
	if code := run.cmd.ProcessState.ExitCode(); code != 0 && code != 3 {
		return nil, fmt.Errorf("sustained trace exited %d", code)
	}
	s.RSSMB, s.CPUSeconds = run.rssMB, cpuTime(run.cmd).Seconds()
	var rep report
	if err := jsonInto(run.stdout, &rep); err != nil {
		return nil, err
	}
	s.ProbesPerSec = float64(rep.Probes.Sent) / run.wall.Seconds()
	s.Received = rep.Probes.Received
	// Warm-up: the report's exact probes in and settled, at 5 s or a tenth
	// of the run if later.
	exact := time.Duration(max(rep.ExactProbes, 10000)) * time.Millisecond
	warm := max(5, len(s.RSSMB)/10, int((exact+exactSettle)/time.Second))
	s.summarise(min(warm, len(s.RSSMB)-1), maxRSSMB(run.cmd))
	s.RateVerdict = metIf(s.ProbesPerSec >= 900)
	return s, nil
}
