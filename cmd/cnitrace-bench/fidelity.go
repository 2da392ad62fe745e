//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// rttFidelity puts cnitrace's RTT next to iputils ping's on the same
// path: in alternating rounds, and in rounds where both run at once.
type rttFidelity struct {
	Pilot       int        `json:"pilot_rounds"`  // rounds run first, whose spread sets Needed
	Needed      int        `json:"rounds_needed"` // rounds for every row's 95% interval to be as narrow as its band, as the pilot predicts
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
	// Alternating rounds also ping under five tcpdumps on cnitrace's five
	// points whose filter copies ping's packets, as cnitrace's rings copy
	// its own probes: the same captures on both sides.
	SameCaptures *sameCaptures `json:"same_captures,omitempty"`
}

// sameCaptures is cnitrace's RTT against ping's under the same captures.
type sameCaptures struct {
	PingP50  float64   `json:"ping_p50_us"`     // median over rounds of ping's p50 under the tcpdumps
	TapFloor float64   `json:"tap_floor_ratio"` // PingP50 / the bare ping's: what the captures cost any prober
	PerRound []float64 `json:"ratio_per_round"` // rtt_ping_us p50 / ping p50 under the tcpdumps
	Ratio    interval  `json:"ratio"`
	Verdict  verdict   `json:"verdict"`
	Problem  string    `json:"problem,omitempty"` // a tcpdump that missed ping's packets
}

var rttBand = band{0.95, 1.05}

// rttMaxRounds bounds section 2's rounds (~6 s each).
const rttMaxRounds = 40

// ratios is num[i]/den[i], round by round.
func ratios(num, den []float64) []float64 {
	r := make([]float64, 0, min(len(num), len(den)))
	for i := range cap(r) {
		r = append(r, num[i]/den[i])
	}
	return r
}

func (b *bench) rttFidelity(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	f := &rttFidelity{Goal: "rtt_ping_us p50 / ping p50 within 0.95-1.05 (95% CI), alternating and concurrent"}
	// The issue asks for 5 rounds at least; 5 left the CI 0.25 wide, 10
	// still 0.15 at times: the pilot's spread sets the rest.
	n := b.counts(50, 20)
	f.Pilot = b.counts(10, 2)
	var alt, conc [3][]float64 // ping-style, kernel, ping
	var under []float64        // ping's p50 under the same captures, per alternating round
	var problems []string
	round := func(int) error {
		t, err := b.trace(ctx, l, "--count", strconv.Itoa(n), "--interval", "10ms")
		if err != nil {
			return err
		}
		p, err := b.ping(ctx, l, n, 10*time.Millisecond)
		if err != nil {
			return err
		}
		alt = addRound(alt, t.report, median(p))
		u, problem, err := b.pingUnderTcpdumps(ctx, l, n, true)
		if err != nil {
			return err
		}
		under = append(under, median(u))
		if problem != "" {
			problems = append(problems, problem)
		}
		ct, cp, err := b.traceInsidePing(ctx, l, n, 10*time.Millisecond)
		if err != nil {
			return err
		}
		conc = addRound(conc, ct.report, median(cp))
		return nil
	}
	half := (rttBand.Hi - rttBand.Lo) / 2
	needed, rounds, err := pilotThenDecide(f.Pilot, b.counts(rttMaxRounds, 2), round, func() int {
		return max(roundsToDecide(ratios(alt[0], alt[2]), half),
			roundsToDecide(ratios(alt[0], under), half),
			roundsToDecide(ratios(conc[0], conc[2]), half))
	})
	if err != nil {
		return err
	}
	f.Needed = needed
	f.Alternating = &rttRounds{Rounds: rounds, ProbesPerRound: n}
	f.Concurrent = &rttRounds{Rounds: rounds, ProbesPerRound: n}
	f.Alternating.summarise(alt)
	f.Alternating.SameCaptures = newSameCaptures(alt[0], alt[2], under, strings.Join(problems, "; "))
	f.Concurrent.summarise(conc)
	f.Verdict = allOf(f.Alternating.Verdict, f.Concurrent.Verdict)
	r.RTT = f
	return nil
}

// traceInsidePing runs an iputils ping from pod 1 to pod 2 at interval
// and, armLead after it starts, a trace of n probes, so that ping's run
// covers the trace's; it returns the trace and the RTTs of the pings
// sent while the trace probed (from its first probe's send stamp to its
// last's, give or take half an interval). Both sides of a concurrent
// round are then over the same span of time: a trace longer than ping,
// as the accuracy rounds run (traceWithPing), would mix its probes sent
// beside ping with as many sent alone.
func (b *bench) traceInsidePing(ctx context.Context, l *lab.Lab, n int, interval time.Duration) (traceRun, []float64, error) {
	const armLead = 300 * time.Millisecond
	pings := n + int(2*armLead/interval)
	done := make(chan struct{})
	var p pingRun
	var perr error
	go func() {
		defer close(done)
		p, perr = b.pingWith(ctx, l, pings, interval, "-D")
	}()
	select {
	case <-time.After(armLead):
	case <-done:
	}
	t, terr := b.trace(ctx, l, "--count", strconv.Itoa(n), "--interval", interval.String(), "--for-merge")
	<-done
	if err := errors.Join(terr, perr); err != nil {
		return traceRun{}, nil, err
	}
	first, last, ok := t.report.sendSpan()
	if !ok {
		return traceRun{}, nil, errors.New("concurrent round: the trace's report has no send stamps (trace --for-merge)")
	}
	inside := pingsSentWithin(p, first.Add(-interval/2), last.Add(interval/2))
	if len(inside) < n/2 {
		return traceRun{}, nil, fmt.Errorf("concurrent round: %d of ping's %d replies were sent while the trace's %d probes were, want at least %d",
			len(inside), len(p.rtts), n, n/2)
	}
	return t, inside, nil
}

// pingsSentWithin returns the RTTs of p's replies whose echoes were sent
// from `from` to `to`.
func pingsSentWithin(p pingRun, from, to time.Time) []float64 {
	var in []float64
	for i, at := range p.sent {
		if !at.Before(from) && !at.After(to) {
			in = append(in, p.rtts[i])
		}
	}
	return in
}

// newSameCaptures compares, round by round, cnitrace's rtt_ping_us p50
// (pingStyle) with ping's under the same captures (under); bare is the
// bare ping's p50 of the same rounds, for the floor the captures set.
func newSameCaptures(pingStyle, bare, under []float64, problem string) *sameCaptures {
	sc := &sameCaptures{PingP50: median(under), Problem: problem}
	if b := median(bare); b > 0 {
		sc.TapFloor = sc.PingP50 / b
	}
	sc.PerRound = ratios(pingStyle, under)
	sc.Ratio = meanCI(sc.PerRound)
	sc.Verdict = judge(sc.Ratio, rttBand)
	if problem != "" {
		sc.Verdict = notJudged("%s", problem)
	}
	return sc
}

// pingUnderTcpdumps pings n times at 10 ms while five buffered tcpdumps
// capture on cnitrace's five points. With copied, ping's packets carry
// the probe magic where the tcpdumps' filter reads it, so every tap
// copies them, as cnitrace's rings copy its own probes; without, the same
// filter rejects them and only the taps' presence costs. It returns
// ping's RTTs and, with copied, what a tcpdump missed of ping's packets
// (a comparator that did not copy them is no comparator).
func (b *bench) pingUnderTcpdumps(ctx context.Context, l *lab.Lab, n int, copied bool) ([]float64, string, error) {
	td, err := startTcpdumps(ctx, l, tcpdumpFilter(probe.Magic, pingPatternAt, lab.VXLANPort))
	if err != nil {
		return nil, "", err
	}
	var extra []string
	if copied {
		extra = []string{"-p", fmt.Sprintf("%08x", probe.Magic)}
	}
	p, perr := b.pingWith(ctx, l, n, 10*time.Millisecond, extra...)
	tr, terr := td.stop()
	if err := errors.Join(perr, terr); err != nil {
		return nil, "", fmt.Errorf("ping under tcpdumps: %w", err)
	}
	if !copied {
		return p.rtts, "", nil
	}
	return p.rtts, tr.sawAll(2 * uint64(len(p.rtts))), nil
}

func addRound(v [3][]float64, rep report, ping float64) [3][]float64 {
	v[0] = append(v[0], rep.PingRTT.P50)
	v[1] = append(v[1], rep.RTT.P50)
	v[2] = append(v[2], ping)
	return v
}

func (f *rttRounds) summarise(v [3][]float64) {
	f.PingStyleP50, f.KernelP50, f.PingP50 = median(v[0]), median(v[1]), median(v[2])
	f.PerRound = ratios(v[0], v[2])
	f.Ratio = meanCI(f.PerRound)
	f.KernelRatio = f.KernelP50 / f.PingP50
	f.Verdict = judge(f.Ratio, rttBand)
}

// observerEffect is ping's RTT with cnitrace capturing on every point and
// without, in alternate rounds; the effect is judged on the per-round
// difference of the two medians.
type observerEffect struct {
	Pilot      int       `json:"pilot_rounds"`  // rounds run first, whose spread sets Needed
	Needed     int       `json:"rounds_needed"` // rounds for a 95% interval of +-2 us, as the pilot predicts
	Rounds     int       `json:"rounds"`        // rounds run: Needed, at most observerMaxRounds
	PerRound   int       `json:"pings_per_round"`
	AloneP50   float64   `json:"ping_alone_p50_us"`
	CaptureP50 float64   `json:"ping_while_capturing_p50_us"`
	Added      []float64 `json:"added_us_per_round"`
	AddedUS    interval  `json:"added_us"`
	Goal       string    `json:"goal"`
	Verdict    verdict   `json:"verdict"`
	Met        bool      `json:"met"`
	// Against the tools it replaces: ping while five buffered tcpdumps
	// capture on the same five points, with a filter that does not keep
	// ping's packets (as cnitrace's does not), in the same rounds.
	Tcpdumps *observerTcpdumps `json:"vs_tcpdumps,omitempty"`
}

// observerTcpdumps is the observer effect of five tcpdumps beside
// cnitrace's.
type observerTcpdumps struct {
	P50     float64   `json:"ping_while_tcpdumps_p50_us"`
	Added   []float64 `json:"added_us_per_round"`
	AddedUS interval  `json:"added_us"`
	Over    []float64 `json:"cnitrace_over_tcpdumps_us_per_round"` // cnitrace's added minus the tcpdumps', per round
	OverUS  interval  `json:"cnitrace_over_tcpdumps_us"`
	Goal    string    `json:"goal"`
	Verdict verdict   `json:"verdict"`
}

func (b *bench) observerEffect(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	o := &observerEffect{Pilot: b.counts(12, 2), PerRound: b.counts(100, 20)}
	td := &observerTcpdumps{}
	var alone, captured, dumped []float64
	round := func(i int) error {
		var a, c, d []float64
		arms := []func() error{
			func() (err error) { a, err = b.ping(ctx, l, o.PerRound, 10*time.Millisecond); return err },
			func() (err error) { c, err = b.pingWhileCapturing(ctx, l, o.PerRound); return err },
			func() (err error) { d, _, err = b.pingUnderTcpdumps(ctx, l, o.PerRound, false); return err },
		}
		for k := range arms { // each round in another order: no arm always follows the same one
			if err := arms[(k+i)%len(arms)](); err != nil {
				return err
			}
		}
		alone, captured, dumped = append(alone, a...), append(captured, c...), append(dumped, d...)
		o.Added = append(o.Added, median(c)-median(a))
		td.Added = append(td.Added, median(d)-median(a))
		td.Over = append(td.Over, median(c)-median(d))
		return nil
	}
	// The goal's +-2 us is narrower than a dozen rounds resolve here (their
	// medians move by ~10 us from round to round): the pilot's spread sets
	// how many rounds decide it, up to a bound on the section's time.
	o.Needed, o.Rounds, err = pilotThenDecide(o.Pilot, b.counts(observerMaxRounds, 2), round, func() int {
		return roundsToDecide(o.Added, observerTolerance)
	})
	if err != nil {
		return err
	}
	o.AloneP50, o.CaptureP50, td.P50 = median(alone), median(captured), median(dumped)
	o.AddedUS, td.AddedUS, td.OverUS = meanCI(o.Added), meanCI(td.Added), meanCI(td.Over)
	// Within the noise: indistinguishable from no effect at +-2 us, so an
	// interval wider than that cannot say (a negative effect is noise).
	o.Goal = "added within +-2 us (95% CI of the per-round difference)"
	o.Verdict = judge(o.AddedUS, band{-observerTolerance, observerTolerance})
	o.Met = o.Verdict.Met()
	// Any capture on the five points costs ping its taps' presence (a
	// filter run and, on transmit, a clone per tapped device, from cold
	// caches at a 10 ms cadence): cnitrace's effect is judged against the
	// tools it replaces, at most 5 us above theirs.
	td.Goal = "added at most 5 us more than five buffered tcpdumps' on the same points (95% CI of the per-round difference)"
	td.Verdict = judge(td.OverUS, atMost(observerOverTcpdumps))
	o.Tcpdumps = td
	r.Observer = o
	return nil
}

// observerOverTcpdumps is how much more than five tcpdumps' an observer
// effect may be, in us.
const observerOverTcpdumps = 5

// observerTolerance is the observer effect the goal calls within the
// noise, +- in us, and observerMaxRounds the most rounds that measure it
// (~6 s each).
const (
	observerTolerance = 2
	observerMaxRounds = 120
)

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
