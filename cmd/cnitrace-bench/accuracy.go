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
// delay D, cnitrace and an independent ping at the same time. Both
// injectors record how long they held each packet of cnitrace's probes
// (received at, sent on at, on the clock of cnitrace's capture stamps),
// and cnitrace's JSON report (trace --for-merge) has every probe's stamps,
// so each round compares the two on the same packets: the truth is the
// hold's median with D minus that with none, and cnitrace's error is the
// median over the probes of its span across the held segment minus the
// hold, with D minus with none. What the segment holds besides the
// injector (the wire, the queue's round trip through the kernel) is in
// both and cancels, and the injector's own jitter is in both figures of a
// probe and cancels too. The goal is judged on that error, per round,
// with its 95% interval; ping's RTT growth is the independent check
// beside it.
type accuracyRow struct {
	Site           string    `json:"site"`
	InjectedUS     float64   `json:"injected_us"`
	Rounds         int       `json:"rounds"`
	ProbesPerRound int       `json:"probes_per_round"`
	TruthSource    string    `json:"truth_source"`
	TruthUS        []float64 `json:"truth_us_per_round"`          // the hold's median over the paired probes with D - without
	PairedProbes   []int     `json:"paired_probes_per_round"`     // probes both cnitrace and the injector saw, the fewer of the two runs'
	StampRounds    int       `json:"rounds_holds_from_skb_stamp"` // rounds whose holds ran from the kernel's stamp of each packet (forward-*)
	InjectorLateUS float64   `json:"injector_late_us"`            // mean over rounds of the median lateness of the probes' packets with D
	InjectorMaxUS  float64   `json:"injector_late_max_us"`
	PingDeltas     []float64 `json:"ping_delta_us_per_round"` // ping's RTT p50 with minus without
	PingDeltaUS    float64   `json:"ping_delta_us"`
	PingError      interval  `json:"ping_error_us"` // ping's growth minus the truth: the check
	SegmentFrom    string    `json:"segment_from"`
	SegmentTo      string    `json:"segment_to"`
	Recovered      []float64 `json:"recovered_us_per_round"` // the holding segment's median over the paired probes with minus without
	RecoveredUS    float64   `json:"recovered_us"`
	ReportMoves    []float64 `json:"report_move_us_per_round"` // the holding segment's p50 in the report (all probes) with minus without
	Error          interval  `json:"error_us"`                 // median of span - hold over the paired probes, with minus without, per round
	ErrorPerRound  []float64 `json:"error_us_per_round"`
	OtherMaxUS     float64   `json:"other_max_move_us"`     // the largest |mean (cnitrace's p50 move - the kernel reference's move)| over rounds of any other separable segment
	OtherWorst     string    `json:"other_worst"`           // that segment
	OtherRawMaxUS  float64   `json:"other_raw_max_move_us"` // the largest |mean p50 move| of any other segment, cnitrace's alone
	OtherRawWorst  string    `json:"other_raw_worst"`
	OtherRefMoveUS float64   `json:"other_raw_worst_reference_move_us"` // the kernel reference's mean move of that segment
	// OtherFromStamps counts the (round, segment) moves taken from the
	// probes' own stamps because the two reports timed the segment from
	// different steps.
	OtherFromStamps int     `json:"other_moves_from_stamps"`
	OtherVerdict    verdict `json:"others_verdict"` // every other segment's mean move within +-10 us (95% CI)
	ToleranceUS     float64 `json:"tolerance_us"`
	Goal            string  `json:"goal"`
	Verdict         verdict `json:"verdict"`
	Met             bool    `json:"met"`
}

// stopFunc removes an injected delay and says what the injector did.
type stopFunc func() (injectorLate, error)

// injectorLate is what an injector measured of itself: how late, past
// their release times, it let packets go (typically: the median over
// cnitrace's probes; at most, over every packet), and how long it held
// each packet of cnitrace's probes (us), from when the packet reached it
// to when it sent it on. StampHolds are the same from the kernel's stamp
// of each packet that had one (the delayer's), not its arrival in user
// space.
type injectorLate struct {
	Typical, Max time.Duration
	Holds        map[probeKey]float64
	StampHolds   map[probeKey]float64
}

// site is a place a delay can be injected and the segment that holds it.
// prepare, when set, readies the lab for the site's baselines (and returns
// how to undo it).
type site struct {
	name    string
	holds   func(s segment, kind map[string]string) bool
	inject  func(ctx context.Context, l *lab.Lab, d time.Duration) (stop stopFunc, err error)
	prepare func(ctx context.Context, l *lab.Lab) (undo func() error, err error)
}

func sites() []site {
	return []site{
		{"network", isNetwork, injectNetwork, prepareNetwork},
		{"forward-request", func(s segment, k map[string]string) bool {
			return s.Direction == "request" && k[s.To] == "vxlan"
		}, forwardInjector(lab.BridgeName, lab.VXLANName, false), nil},
		{"forward-reply", func(s segment, k map[string]string) bool {
			return s.Direction == "reply" && k[s.To] == "bridge"
		}, forwardInjector(lab.VXLANName, lab.BridgeName, true), nil},
	}
}

func isNetwork(s segment, _ map[string]string) bool { return s.Class == "network" }

// forwardInjector holds ICMP forwarded from in to out on node 1 with an
// NFQUEUE delayer; reply says the probes' packets that way are replies.
func forwardInjector(in, out string, reply bool) func(context.Context, *lab.Lab, time.Duration) (stopFunc, error) {
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
			return forwardHolds(del.Stats(), d, reply), err
		}, nil
	}
}

// forwardHolds is what the delayer held of the probes' packets that are
// replies (or requests). The kernel hands a packet over with its skb
// stamp when it has one (while the host's RX timestamping is on, the
// stamp cnitrace reads at the segment's first point): a hold from that
// stamp has the queue's way to user space, a thread's wake-up that varies
// by tens of us, in it rather than beside it.
func forwardHolds(s nfqdelay.Stats, d time.Duration, reply bool) injectorLate {
	late := injectorLate{Max: s.MaxLate, Holds: map[probeKey]float64{}, StampHolds: map[probeKey]float64{}}
	var lates []float64
	for _, h := range s.Holds {
		if h.Reply != reply {
			continue
		}
		k := probeKey{h.Token.RunID, h.Token.Seq}
		late.Holds[k] = us(h.Hold)
		if h.SinceStamp > 0 {
			late.StampHolds[k] = us(h.SinceStamp)
		}
		lates = append(lates, us(h.Hold-d))
	}
	late.Typical = time.Duration(median(lates) * 1000)
	return late
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
	raw, others, refs := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for range row.Rounds {
		b0, err := b.injected(ctx, l, st, 0, row.ProbesPerRound)
		if err != nil {
			return row, err
		}
		bd, err := b.injected(ctx, l, st, d, row.ProbesPerRound)
		if err != nil {
			return row, err
		}
		base, pingBase, late0, with, pingWith, late := b0.trace, b0.ping, b0.late, bd.trace, bd.ping, bd.late
		row.InjectorMaxUS = max(row.InjectorMaxUS, us(late.Max))
		r, moves := compareSegments(st, base.report, with.report)
		for k, m := range moves {
			raw[k] = append(raw[k], m)
			rb, okb := b0.ref[k]
			rw, okw := bd.ref[k]
			if okb && okw {
				others[k], refs[k] = append(others[k], m-(rw-rb)), append(refs[k], rw-rb)
			}
		}
		row.SegmentFrom, row.SegmentTo = r.SegmentFrom, r.SegmentTo
		row.OtherFromStamps += r.OtherFromStamps
		row.ReportMoves = append(row.ReportMoves, r.RecoveredUS)
		held := heldSegment(st, with.report)
		bs, ws := base.report.spans(held), with.report.spans(held)
		// The holds from the skb stamps when both runs pair enough probes
		// with them (the host's RX timestamping may go off and on), else
		// from the arrival in user space, in both.
		p, ok := pairRound(bs, late0.StampHolds, ws, late.StampHolds)
		if ok {
			row.StampRounds++
		} else {
			p, ok = pairRound(bs, late0.Holds, ws, late.Holds)
		}
		row.PairedProbes = append(row.PairedProbes, p.Probes)
		if !ok { // no figure this round: the verdict says so if too few rounds have one
			continue
		}
		pd := median(pingWith.rtts) - median(pingBase.rtts)
		lates = append(lates, us(late.Typical))
		row.TruthUS, row.PingDeltas, row.Recovered = append(row.TruthUS, p.Truth), append(row.PingDeltas, pd), append(row.Recovered, p.Recovered)
		row.ErrorPerRound = append(row.ErrorPerRound, p.Error)
		errs, pingErrs = append(errs, p.Error), append(pingErrs, pd-p.Truth)
	}
	row.PingDeltaUS, row.RecoveredUS = meanCI(row.PingDeltas).Mean, meanCI(row.Recovered).Mean
	row.InjectorLateUS = meanCI(lates).Mean
	row.judgeOthers(raw, others, refs)
	row.Error, row.PingError = meanCI(errs), meanCI(pingErrs)
	row.TruthSource = "the injector's hold of the probes cnitrace measured, median with the delay - without; error: median of cnitrace's span - the hold over the same probes, with - without"
	row.ToleranceUS = math.Max(0.03*row.InjectedUS, 20)
	row.Goal = fmt.Sprintf("recovered - truth within +-%.0f us; every other segment's move within +-%.0f us of the kernel tracepoints' move (95%% CIs)", row.ToleranceUS, otherTolerance)
	errVerdict := judge(row.Error, band{-row.ToleranceUS, row.ToleranceUS})
	if 2*row.Error.N < row.Rounds { // a few rounds' figures are not the row's
		errVerdict = notJudged("%d of %d rounds paired %d+ probes with the injector's holds (%v)", row.Error.N, row.Rounds, minPaired, row.PairedProbes)
	}
	row.Verdict = allOf(errVerdict, row.OtherVerdict)
	row.Met = row.Verdict.Met()
	return row, nil
}

// injectedRun is one run with an injector in place: the trace, the ping
// beside it, what the injector held, and the kernel reference's median
// span of each segment (nil when perf could not record).
type injectedRun struct {
	trace traceRun
	ping  pingRun
	late  injectorLate
	ref   map[string]float64
}

// injected measures a trace and a ping together with the site's injector
// in place, delaying by d, and the kernel's own times beside them.
func (b *bench) injected(ctx context.Context, l *lab.Lab, st site, d time.Duration, n int) (injectedRun, error) {
	stop, err := st.inject(ctx, l, d)
	if err != nil {
		return injectedRun{}, err
	}
	var r injectedRun
	k, kerr := startKernelRef(ctx)
	var werr error
	r.trace, r.ping, werr = b.traceWithPing(ctx, l, n, 10*time.Millisecond, "--for-merge")
	if kerr == nil {
		r.ref, kerr = k.stop(ctx, labDevs(l), pointKinds(r.trace.report))
	}
	if kerr != nil {
		fmt.Fprintf(b.log, "cnitrace-bench: no kernel reference this run: %v\n", kerr)
	}
	var serr error
	r.late, serr = stop()
	return r, errors.Join(werr, serr)
}

// pointKinds maps rep's point IDs to their kinds.
func pointKinds(rep report) map[string]string {
	m := map[string]string{}
	for _, p := range rep.Points {
		m[p.ID] = p.Kind
	}
	return m
}

// judgeOthers judges the other segments' moves against the kernel
// reference's: others are cnitrace's move minus the reference's in the
// same round, raw cnitrace's own, refs the reference's.
func (row *accuracyRow) judgeOthers(raw, others, refs map[string][]float64) {
	var worst float64
	row.OtherRawWorst, worst, _ = judgeStill(raw, otherTolerance)
	row.OtherRawMaxUS = math.Abs(worst)
	row.OtherRefMoveUS = meanCI(refs[row.OtherRawWorst]).Mean
	row.OtherWorst, worst, row.OtherVerdict = judgeStill(others, otherTolerance)
	row.OtherMaxUS = math.Abs(worst)
	var judged, all int
	for k, v := range raw {
		all += len(v)
		judged += len(others[k])
	}
	if 2*judged < all {
		row.OtherVerdict = notJudged("the kernel reference timed %d of %d other-segment moves", judged, all)
	}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// otherTolerance is how far the segments that do not hold the delay may
// move, in us.
const otherTolerance = 10.0

// heldSegment is the segment of rep that holds the site's delay (zero
// when none does).
func heldSegment(st site, rep report) segment {
	kind := map[string]string{}
	for _, p := range rep.Points {
		kind[p.ID] = p.Kind
	}
	for _, s := range rep.Segments {
		if s.US != nil && st.holds(s, kind) {
			return s
		}
	}
	return segment{}
}

// compareSegments finds the segment holding the site and how far each of
// the others moved between two reports of the same path. A move compares
// like with like: the report's p50s when both reports time the segment
// from the same step; when one of them merged a non-separable segment
// before it and the other did not, the median of the segment's own span
// over its probes whose stamps at both ends are their own, in each
// report (row.OtherFromStamps counts those). The report calls a segment
// non-separable when at least half its probes' RX stamps at the end were
// inherited, and that share follows how long ping's run (SO_TIMESTAMP)
// overlaps the trace, which the delay changes: iputils ping's 50 pings
// last about 800 ms at an RTT under 1 ms and 500 ms above it. Comparing a
// p2->p3 timed from p1 with one timed from p2 moved it by the p1->p2
// segment, 10-19 us.
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
		if timedFrom(base, i) != timedFrom(with, i) {
			b, w := base.ownSpans(base.Segments[i]), with.ownSpans(s)
			if len(b) < minPaired || len(w) < minPaired {
				continue
			}
			move = median(w) - median(b)
			row.OtherFromStamps++
		}
		moves[s.Direction+" "+s.From+"->"+s.To] = move
	}
	return row, moves
}

// timedFrom is the segment whose first step rep times segment i from: i,
// or the first of the non-separable segments just before it, which the
// report merged into it.
func timedFrom(rep report, i int) int {
	for i > 0 && !rep.Segments[i-1].Separable {
		i--
	}
	return i
}

// ownSpans is the time across segment s, in us, of each of rep's probes
// whose stamps at both of s's steps are their own: a stamp equal to the
// one at the step before was inherited from it (design.md, kernel fact 1),
// and the span would be that of more than s. Nil when rep has no stamps
// or s is not two consecutive steps of them.
func (r report) ownSpans(s segment) []float64 {
	if r.Stamps == nil {
		return nil
	}
	i := r.stepOf(s)
	if i < 0 {
		return nil
	}
	var out []float64
	for _, run := range r.Stamps.Runs {
		for _, p := range run.Probes {
			if len(p.At) <= i+1 || p.At[i] == 0 || p.At[i+1] == 0 {
				continue
			}
			if p.At[i+1] == p.At[i] || i > 0 && p.At[i] == p.At[i-1] {
				continue
			}
			out = append(out, float64(p.At[i+1]-p.At[i])/1000)
		}
	}
	return out
}
