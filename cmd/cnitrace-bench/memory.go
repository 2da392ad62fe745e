//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// memoryResult is a long run's resident set, sampled: flat after warm-up
// is the goal, whatever the number of probes (docs/report-format.md,
// "Memory and long runs").
type memoryResult struct {
	Probes        int       `json:"probes"`
	IntervalMS    float64   `json:"interval_ms"`
	WallSeconds   float64   `json:"wall_seconds"`
	Sent          int       `json:"sent"`
	Received      int       `json:"received"`
	Dropped       int       `json:"dropped_by_cnitrace"`
	ExactProbes   int       `json:"exact_probes"`
	PeriodSeconds float64   `json:"sample_period_seconds"`
	RSSMB         []float64 `json:"rss_mb_samples"`
	WarmUpSeconds float64   `json:"warm_up_seconds"`
	WarmMB        float64   `json:"rss_after_warm_up_mb"`
	EndMB         float64   `json:"rss_at_end_mb"`
	MaxMB         float64   `json:"max_rss_mb"`
	Ratio         float64   `json:"end_over_warm_up"`
	PeakRatio     float64   `json:"peak_after_warm_up_over_warm_up"`
	Goal          string    `json:"goal"`
	Met           bool      `json:"met"`
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
	m := &memoryResult{Probes: b.counts(1_000_000, 100_000), IntervalMS: float64(memoryInterval) / float64(time.Millisecond), PeriodSeconds: 1}
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
	m.summarise()
	r.Memory = m
	return nil
}

// summarise reads warm-up, end and peak off the samples and judges them.
func (m *memoryResult) summarise() {
	m.Goal = "RSS flat after warm-up: at the end and at its peak since, within 10% of it"
	if len(m.RSSMB) < 2 {
		return
	}
	warm := min(max(5, len(m.RSSMB)/10), len(m.RSSMB)-1)
	m.WarmUpSeconds = float64(warm+1) * m.PeriodSeconds
	m.WarmMB, m.EndMB = m.RSSMB[warm], m.RSSMB[len(m.RSSMB)-1]
	peak := 0.0
	for i, mb := range m.RSSMB {
		m.MaxMB = max(m.MaxMB, mb)
		if i >= warm {
			peak = max(peak, mb)
		}
	}
	if m.WarmMB > 0 {
		m.Ratio, m.PeakRatio = m.EndMB/m.WarmMB, peak/m.WarmMB
	}
	m.Met = m.Ratio > 0 && m.Ratio <= 1.1 && m.PeakRatio <= 1.1
}

// curve is every k-th sample and the last, so that about ten show the
// run's course: "24.0 30.4 35.0 ... 35.8".
func (m *memoryResult) curve() string {
	k := max(len(m.RSSMB)/10, 1)
	var c []string
	for i := 0; i < len(m.RSSMB); i += k {
		c = append(c, fmt.Sprintf("%.1f", m.RSSMB[i]))
	}
	if n := len(m.RSSMB); n > 0 && (n-1)%k != 0 {
		c = append(c, fmt.Sprintf("%.1f", m.RSSMB[n-1]))
	}
	return strings.Join(c, " ")
}
