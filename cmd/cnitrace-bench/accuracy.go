//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/cmd/cnitrace-bench/nfqdelay"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// accuracyRow is one injected delay and what came back, over rounds.
// Each round measures the injector in place with no delay, then with the
// delay D, cnitrace and an independent ping at the same time. The truth
// each round is D plus the injector's own lateness with D minus that
// with none, as the injector measured it (the baseline holds its fixed
// cost: the NFQUEUE round trip, the delay line's wake-ups). The goal is
// judged on cnitrace's error against that truth, per round, with its 95%
// interval; ping's RTT growth is the independent check beside it.
type accuracyRow struct {
	Site           string    `json:"site"`
	InjectedUS     float64   `json:"injected_us"`
	Rounds         int       `json:"rounds"`
	ProbesPerRound int       `json:"probes_per_round"`
	TruthSource    string    `json:"truth_source"`
	TruthUS        []float64 `json:"truth_us_per_round"` // D + the injector's lateness with D - without, or ping's growth
	InjectorLateUS float64   `json:"injector_late_us"`   // mean over rounds of its typical lateness with D
	InjectorMaxUS  float64   `json:"injector_late_max_us"`
	PingDeltas     []float64 `json:"ping_delta_us_per_round"` // ping's RTT p50 with minus without
	PingDeltaUS    float64   `json:"ping_delta_us"`
	PingError      interval  `json:"ping_error_us"` // ping's growth minus the truth: the check
	SegmentFrom    string    `json:"segment_from"`
	SegmentTo      string    `json:"segment_to"`
	Recovered      []float64 `json:"recovered_us_per_round"` // the holding segment's p50 with minus without
	RecoveredUS    float64   `json:"recovered_us"`
	Error          interval  `json:"error_us"`          // recovered minus the truth, per round
	OtherMaxUS     float64   `json:"other_max_move_us"` // the largest |mean p50 move| over rounds of any other separable segment
	OtherWorst     string    `json:"other_worst"`       // that segment
	OtherVerdict   verdict   `json:"others_verdict"`    // every other segment's mean move within +-10 us (95% CI)
	ToleranceUS    float64   `json:"tolerance_us"`
	Goal           string    `json:"goal"`
	Verdict        verdict   `json:"verdict"`
	Met            bool      `json:"met"`
}

// stopFunc removes an injected delay and says how late, past its release
// times, the injector let packets go.
type stopFunc func() (injectorLate, error)

// injectorLate is an injector's own error as it measured it: a typical
// figure (the NFQUEUE delayer's median, the delay line's mean) and the
// largest.
type injectorLate struct{ Typical, Max time.Duration }

// site is a place a delay can be injected and the segment that holds it.
// prepare, when set, readies the lab for the site's baselines (and returns
// how to undo it).
type site struct {
	name string
	// truthFromPing: the injector measures its lateness only as a mean,
	// which one stall of the machine moves by more than the tolerance, so
	// the truth is what an independent ping saw instead.
	truthFromPing bool
	holds         func(s segment, kind map[string]string) bool
	inject        func(ctx context.Context, l *lab.Lab, d time.Duration) (stop stopFunc, err error)
	prepare       func(ctx context.Context, l *lab.Lab) (undo func() error, err error)
}

func sites() []site {
	return []site{
		{"network", true, isNetwork, injectNetwork, prepareNetwork},
		{"forward-request", false, func(s segment, k map[string]string) bool {
			return s.Direction == "request" && k[s.To] == "vxlan"
		}, forwardInjector(lab.BridgeName, lab.VXLANName), nil},
		{"forward-reply", false, func(s segment, k map[string]string) bool {
			return s.Direction == "reply" && k[s.To] == "bridge"
		}, forwardInjector(lab.VXLANName, lab.BridgeName), nil},
	}
}

func isNetwork(s segment, _ map[string]string) bool { return s.Class == "network" }

// forwardInjector holds ICMP forwarded from in to out on node 1 with an
// NFQUEUE delayer.
func forwardInjector(in, out string) func(context.Context, *lab.Lab, time.Duration) (stopFunc, error) {
	return func(ctx context.Context, l *lab.Lab, d time.Duration) (stopFunc, error) {
		const queue = 7
		del, err := nfqdelay.Open(l.Nodes[0].NS, nfqdelay.Config{Queue: queue, Delay: d})
		if err != nil {
			return nil, err
		}
		rule := []string{"FORWARD", "-i", in, "-o", out, "-p", "icmp", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(queue), "--queue-bypass"}
		if out, err := l.Command(ctx, l.Nodes[0].NSPath, "iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
			del.Close()
			return nil, fmt.Errorf("iptables: %v: %s", err, out)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- del.Run(rctx) }()
		return func() (injectorLate, error) {
			_, derr := l.Command(ctx, l.Nodes[0].NSPath, "iptables", append([]string{"-D"}, rule...)...).CombinedOutput()
			cancel()
			err := errors.Join(derr, <-done, del.Close())
			s := del.Stats()
			return injectorLate{Typical: s.MedianLate, Max: s.MaxLate}, err
		}, nil
	}
}

func (b *bench) accuracy(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, st := range sites() {
		rows, err := b.accuracySite(ctx, l, st)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		r.Accuracy = append(r.Accuracy, rows...)
	}
	return nil
}

// accuracySite measures one site at every magnitude.
func (b *bench) accuracySite(ctx context.Context, l *lab.Lab, st site) (rows []accuracyRow, err error) {
	if st.prepare != nil {
		undo, err := st.prepare(ctx, l)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, undo()) }()
	}
	for _, d := range []time.Duration{200 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		row, err := b.accuracyRow(ctx, l, st, d)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", d, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// accuracyRow measures one site and delay over rounds.
func (b *bench) accuracyRow(ctx context.Context, l *lab.Lab, st site, d time.Duration) (accuracyRow, error) {
	row := accuracyRow{Site: st.name, InjectedUS: float64(d.Microseconds()), Rounds: b.counts(8, 2), ProbesPerRound: b.counts(50, 15)}
	var errs, pingErrs, lates []float64
	others := map[string][]float64{}
	for range row.Rounds {
		base, pingBase, late0, err := b.injected(ctx, l, st, 0, row.ProbesPerRound)
		if err != nil {
			return row, err
		}
		with, pingWith, late, err := b.injected(ctx, l, st, d, row.ProbesPerRound)
		if err != nil {
			return row, err
		}
		truth := row.InjectedUS + us(late.Typical) - us(late0.Typical)
		pd := median(pingWith.rtts) - median(pingBase.rtts)
		if st.truthFromPing {
			truth = pd
		}
		lates, row.InjectorMaxUS = append(lates, us(late.Typical)), max(row.InjectorMaxUS, us(late.Max))
		r, moves := compareSegments(st, base.report, with.report)
		for k, m := range moves {
			others[k] = append(others[k], m)
		}
		row.SegmentFrom, row.SegmentTo = r.SegmentFrom, r.SegmentTo
		row.TruthUS, row.PingDeltas, row.Recovered = append(row.TruthUS, truth), append(row.PingDeltas, pd), append(row.Recovered, r.RecoveredUS)
		errs, pingErrs = append(errs, r.RecoveredUS-truth), append(pingErrs, pd-truth)
	}
	row.PingDeltaUS, row.RecoveredUS = meanCI(row.PingDeltas).Mean, meanCI(row.Recovered).Mean
	row.InjectorLateUS = meanCI(lates).Mean
	var worst float64
	row.OtherWorst, worst, row.OtherVerdict = judgeStill(others, otherTolerance)
	row.OtherMaxUS = math.Abs(worst)
	row.Error, row.PingError = meanCI(errs), meanCI(pingErrs)
	row.TruthSource = "injected + the NFQUEUE delayer's median lateness with the delay - without"
	if st.truthFromPing {
		row.TruthSource = "ping's RTT p50 growth (the delay line reports only its mean lateness)"
	}
	row.ToleranceUS = math.Max(0.03*row.InjectedUS, 20)
	row.Goal = fmt.Sprintf("recovered - truth within +-%.0f us; every other segment's move within +-%.0f us (95%% CIs)", row.ToleranceUS, otherTolerance)
	row.Verdict = allOf(judge(row.Error, band{-row.ToleranceUS, row.ToleranceUS}), row.OtherVerdict)
	row.Met = row.Verdict.Met()
	return row, nil
}

// injected measures a trace and a ping together with the site's injector
// in place, delaying by d.
func (b *bench) injected(ctx context.Context, l *lab.Lab, st site, d time.Duration, n int) (traceRun, pingRun, injectorLate, error) {
	stop, err := st.inject(ctx, l, d)
	if err != nil {
		return traceRun{}, pingRun{}, injectorLate{}, err
	}
	t, p, werr := b.traceWithPing(ctx, l, n, 10*time.Millisecond)
	late, serr := stop()
	return t, p, late, errors.Join(werr, serr)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// otherTolerance is how far the segments that do not hold the delay may
// move, in us.
const otherTolerance = 10.0

// compareSegments finds the segment holding the site and how far each of
// the others moved between two reports of the same path.
func compareSegments(st site, base, with report) (accuracyRow, map[string]float64) {
	kind := map[string]string{}
	for _, p := range with.Points {
		kind[p.ID] = p.Kind
	}
	row := accuracyRow{Site: st.name}
	moves := map[string]float64{}
	for i, s := range with.Segments {
		if i >= len(base.Segments) || s.US == nil || base.Segments[i].US == nil {
			continue
		}
		move := s.US.P50 - base.Segments[i].US.P50
		if st.holds(s, kind) {
			row.SegmentFrom, row.SegmentTo, row.RecoveredUS = s.From, s.To, move
			continue
		}
		moves[s.Direction+" "+s.From+"->"+s.To] = move
	}
	return row, moves
}
