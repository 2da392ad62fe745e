//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// rttFidelity puts cnitrace's RTT next to iputils ping's on the same
// path: in alternating rounds, and in rounds where both run at once.
type rttFidelity struct {
	Alternating *rttRounds `json:"alternating"`
	Concurrent  *rttRounds `json:"concurrent"`
	Goal        string     `json:"goal"`
	Verdict     verdict    `json:"verdict"`
	// LegacyRatio is the alternating ratio of results saved before the
	// rounds were split out (only read, for the trend).
	LegacyRatio float64 `json:"p50_ratio,omitempty"`
}

// rttRounds is one way of putting the two side by side.
type rttRounds struct {
	Rounds         int       `json:"rounds"`
	ProbesPerRound int       `json:"probes_per_round"`
	PingStyleP50   float64   `json:"cnitrace_ping_style_p50_us"` // median over rounds of rtt_ping_us p50: user send to capture receive
	KernelP50      float64   `json:"cnitrace_p50_us"`            // the same of rtt_us, which leaves out the pod's send path
	PingP50        float64   `json:"ping_p50_us"`                // median over rounds of ping's p50
	PerRound       []float64 `json:"ratio_per_round"`            // rtt_ping_us p50 / ping p50, within the round
	Ratio          interval  `json:"ratio"`
	KernelRatio    float64   `json:"kernel_ratio"` // KernelP50 / PingP50
	Verdict        verdict   `json:"verdict"`
}

var rttBand = band{0.95, 1.05}

func (b *bench) rttFidelity(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	f := &rttFidelity{Goal: "rtt_ping_us p50 / ping p50 within 0.95-1.05 (95% CI), alternating and concurrent"}
	n, rounds := b.counts(50, 20), b.counts(5, 2)
	f.Alternating = &rttRounds{Rounds: rounds, ProbesPerRound: n}
	f.Concurrent = &rttRounds{Rounds: rounds, ProbesPerRound: n}
	var alt, conc [3][]float64 // ping-style, kernel, ping
	for range rounds {
		t, err := b.trace(ctx, l, "--count", strconv.Itoa(n), "--interval", "10ms")
		if err != nil {
			return err
		}
		p, err := b.ping(ctx, l, n, 10*time.Millisecond)
		if err != nil {
			return err
		}
		alt = addRound(alt, t.report, median(p))
		ct, cp, err := b.traceWithPing(ctx, l, n, 10*time.Millisecond)
		if err != nil {
			return err
		}
		conc = addRound(conc, ct.report, median(cp.rtts))
	}
	f.Alternating.summarise(alt)
	f.Concurrent.summarise(conc)
	f.Verdict = allOf(f.Alternating.Verdict, f.Concurrent.Verdict)
	r.RTT = f
	return nil
}

func addRound(v [3][]float64, rep report, ping float64) [3][]float64 {
	v[0] = append(v[0], rep.PingRTT.P50)
	v[1] = append(v[1], rep.RTT.P50)
	v[2] = append(v[2], ping)
	return v
}

func (f *rttRounds) summarise(v [3][]float64) {
	f.PingStyleP50, f.KernelP50, f.PingP50 = median(v[0]), median(v[1]), median(v[2])
	for i := range v[0] {
		f.PerRound = append(f.PerRound, v[0][i]/v[2][i])
	}
	f.Ratio = meanCI(f.PerRound)
	f.KernelRatio = f.KernelP50 / f.PingP50
	f.Verdict = judge(f.Ratio, rttBand)
}

// observerEffect is ping's RTT with cnitrace capturing on every point and
// without, in alternate rounds; the effect is judged on the per-round
// difference of the two medians.
type observerEffect struct {
	Rounds     int       `json:"rounds"`
	PerRound   int       `json:"pings_per_round"`
	AloneP50   float64   `json:"ping_alone_p50_us"`
	CaptureP50 float64   `json:"ping_while_capturing_p50_us"`
	Added      []float64 `json:"added_us_per_round"`
	AddedUS    interval  `json:"added_us"`
	Goal       string    `json:"goal"`
	Verdict    verdict   `json:"verdict"`
	Met        bool      `json:"met"`
}

func (b *bench) observerEffect(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	o := &observerEffect{Rounds: b.counts(10, 2), PerRound: b.counts(60, 20)}
	var alone, captured []float64
	for range o.Rounds {
		a, err := b.ping(ctx, l, o.PerRound, 10*time.Millisecond)
		if err != nil {
			return err
		}
		c, err := b.pingWhileCapturing(ctx, l, o.PerRound)
		if err != nil {
			return err
		}
		alone, captured = append(alone, a...), append(captured, c...)
		o.Added = append(o.Added, median(c)-median(a))
	}
	o.AloneP50, o.CaptureP50 = median(alone), median(captured)
	o.AddedUS = meanCI(o.Added)
	// Within the noise: indistinguishable from no effect at +-2 us, so an
	// interval wider than that cannot say (a negative effect is noise).
	o.Goal = "added within +-2 us (95% CI of the per-round difference)"
	o.Verdict = judge(o.AddedUS, band{-2, 2})
	o.Met = o.Verdict.Met()
	r.Observer = o
	return nil
}

// pingWhileCapturing pings while a cnitrace trace holds its captures open
// on every point and probes only sparsely (every 100 ms).
func (b *bench) pingWhileCapturing(ctx context.Context, l *lab.Lab, n int) ([]float64, error) {
	d := time.Duration(n)*10*time.Millisecond + time.Second
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.trace(tctx, l, "--count", strconv.Itoa(int(d/(100*time.Millisecond))), "--interval", "100ms")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // discovery and arming
	p, err := b.ping(ctx, l, n, 10*time.Millisecond)
	if terr := <-done; err == nil && terr != nil {
		err = fmt.Errorf("trace while pinging: %w", terr)
	}
	return p, err
}
