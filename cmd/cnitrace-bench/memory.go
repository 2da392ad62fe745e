//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// memoryResult is a long run's resident set (rssCurve) and what it did.
type memoryResult struct {
	Probes      int     `json:"probes"`
	IntervalMS  float64 `json:"interval_ms"`
	WallSeconds float64 `json:"wall_seconds"`
	Sent        int     `json:"sent"`
	Received    int     `json:"received"`
	Dropped     int     `json:"dropped_by_cnitrace"`
	ExactProbes int     `json:"exact_probes"`
	rssCurve
}

// memoryInterval is the probe interval of the run: 5,000 probes a second.
const memoryInterval = 200 * time.Microsecond

// memory runs 10^6 probes (10^5 with --quick) at memoryInterval across the
// lab and samples the binary's VmRSS every second. Warm-up is over once the
// report's exact probes are in and settled and the capture rings are
// touched: at 5 s, or a tenth of the run if later.
func (b *bench) memory(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	m := &memoryResult{Probes: b.counts(1_000_000, 100_000), IntervalMS: float64(memoryInterval) / float64(time.Millisecond)}
	m.PeriodSeconds = 1
	args := append(traceArgs(l), "--count", strconv.Itoa(m.Probes), "--interval", memoryInterval.String())
	run, err := b.sampledTrace(ctx, args)
	if err != nil {
		return err
	}
	m.RSSMB, m.WallSeconds = run.rssMB, run.wall.Seconds()
	if code := run.cmd.ProcessState.ExitCode(); code != 0 && code != 3 {
		return fmt.Errorf("trace of %d probes exited %d", m.Probes, code)
	}
	var rep report
	if err := jsonInto(run.stdout, &rep); err != nil {
		return err
	}
	m.Sent, m.Received, m.Dropped, m.ExactProbes = rep.Probes.Sent, rep.Probes.Received, rep.Probes.Dropped, rep.ExactProbes
	m.summarise(min(max(5, len(m.RSSMB)/10), len(m.RSSMB)-1), maxRSSMB(run.cmd))
	r.Memory = m
	return nil
}
