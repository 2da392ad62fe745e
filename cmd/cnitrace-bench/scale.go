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

// scaleResult is sustained probing with memory sampled, and the wall time
// of a short trace.
type scaleResult struct {
	Probes       int       `json:"probes"`
	IntervalMS   float64   `json:"interval_ms"`
	ProbesPerSec float64   `json:"probes_per_second"`
	Received     int       `json:"received"`
	RSSMB        []float64 `json:"rss_mb_samples"`
	MaxRSSMB     float64   `json:"max_rss_mb"`
	CPUSeconds   float64   `json:"cpu_seconds"`
	ShortWallMS  float64   `json:"short_trace_wall_ms"` // trace --count 10 --interval 10ms, median of 5
	Goal         string    `json:"goal"`
	Met          bool      `json:"met"`
}

func (b *bench) scale(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	s := &scaleResult{Probes: b.counts(60000, 3000), IntervalMS: 1}
	args := append(traceArgs(l), "--count", strconv.Itoa(s.Probes), "--interval", "1ms")
	run, err := b.sampledTrace(ctx, args)
	if err != nil {
		return err
	}
	s.RSSMB = run.rssMB
	wall := run.wall
	if code := run.cmd.ProcessState.ExitCode(); code > 3 {
		return fmt.Errorf("sustained trace exited %d", code)
	}
	s.CPUSeconds = cpuTime(run.cmd).Seconds()
	var rep report
	if err := jsonInto(run.stdout, &rep); err != nil {
		return err
	}
	s.ProbesPerSec = float64(rep.Probes.Sent) / wall.Seconds()
	s.Received = rep.Probes.Received
	for _, m := range s.RSSMB {
		s.MaxRSSMB = max(s.MaxRSSMB, m)
	}
	if s.ShortWallMS, err = b.shortWall(ctx, l); err != nil {
		return err
	}
	s.Goal = "~1000 probes/s sustained, RSS flat and <= 64 MB; short trace <= 500 ms"
	s.Met = s.ProbesPerSec >= 900 && s.MaxRSSMB <= 64 && s.ShortWallMS <= 500
	r.Scale = s
	return nil
}

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

// shortWall is the median wall time of five short traces.
func (b *bench) shortWall(ctx context.Context, l *lab.Lab) (float64, error) {
	var ms []float64
	for range 5 {
		t, err := b.trace(ctx, l, "--count", "10", "--interval", "10ms")
		if err != nil {
			return 0, err
		}
		ms = append(ms, float64(t.wall.Microseconds())/1000)
	}
	return median(ms), nil
}
