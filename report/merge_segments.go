package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// plan decides, as planSpans does for one node, which segments of the
// merged timeline are separable and what each is timed over: a run of
// segments whose RX stamps were inherited is merged into the next
// separable segment of the same node. A wire segment is always separable
// and never takes a run in: the run before it has no later segment on its
// node.
func (m *mergedPath) plan(lines [][]sighting) []span {
	nseg := len(m.steps) - 1
	spans := make([]span, nseg)
	chain := -1
	for i := range nseg {
		seen, inherited := 0, 0
		for _, at := range lines {
			a, b := at[i], at[i+1]
			if !a.ok || !b.ok {
				continue
			}
			seen++
			if m.inheritedAt(at, i+1) {
				inherited++
			}
		}
		sp := span{from: i, to: i + 1, start: i, separable: !m.sameNode(i) || seen == 0 || 2*inherited < seen}
		switch {
		case !sp.separable && chain < 0:
			chain = i
		case sp.separable && chain >= 0:
			if m.sameNode(i) {
				sp.start = chain
			}
			chain = -1
		}
		spans[i] = sp
	}
	return spans
}

// inheritedAt reports whether the stamp at step j (above 0) of a probe's
// merged timeline at was inherited from step j-1, on the same node.
func (m *mergedPath) inheritedAt(at []sighting, j int) bool {
	a, b := at[j-1], at[j]
	return m.sameNode(j-1) && a.ok && b.ok && b.skb && m.steps[j].dir == topology.RX && b.ns == a.ns
}

// stale is timeline.stale for a merged timeline: sp's time on at is left
// out when its end or its start stamp was inherited.
func (m *mergedPath) stale(at []sighting, sp span) bool {
	return m.inheritedAt(at, sp.to) || sp.start > 0 && m.inheritedAt(at, sp.start)
}

// sameNode reports whether segment i lies on one node (it is not a wire).
func (m *mergedPath) sameNode(i int) bool { return m.steps[i].node == m.steps[i+1].node }

// standingShare is the share of the median round trip from which one
// segment is a standing delay for the merged verdict.
const standingShare = 0.5

// timed is every probe's time in every separable segment of a merged
// report, what the verdict compares with the fastest probe; ok[k][i] says
// probe k was timed in segment i.
type timed struct {
	spans []span
	d     [][]time.Duration
	ok    [][]bool
}

// segments builds the merged report's segments: each node's timed on its
// own clock, the two wires with the fitted offset (none without a fit);
// and what each probe spent in each.
func (m *mergedPath) segments(lines [][]sighting, fit *fitAt, pairs []probePair) ([]Segment, *timed) {
	spans := m.plan(lines)
	segs := make([]Segment, len(spans))
	tm := &timed{spans: spans, d: make([][]time.Duration, len(lines)), ok: make([][]bool, len(lines))}
	for k := range lines {
		tm.d[k], tm.ok[k] = make([]time.Duration, len(spans)), make([]bool, len(spans))
	}
	for i, sp := range spans {
		s := m.describe(i)
		s.Separable = sp.separable
		var ds []time.Duration
		for k, at := range lines {
			if at[i].ok && at[i+1].ok {
				s.Seen++
			}
			if d, ok := m.duration(sp, at, fit, pairs[k]); ok && sp.separable && !m.stale(at, sp) {
				ds = append(ds, d)
				tm.d[k][i], tm.ok[k][i] = d, true
			}
		}
		switch {
		case !sp.separable:
			s.Notes = []Note{notef(NoteNotSeparable, "the RX stamp at %s was inherited from %s (the same skb timestamp) in most samples", m.steps[i+1].point.Name(), m.steps[i].point.Name())}
			s.Note = s.Notes[0].String()
		default:
			s.US = dist(ds)
			spans[i].samples = len(ds)
			if sp.start != i {
				s.MergedFrom = m.steps[sp.start].point.ID
			}
		}
		if !m.sameNode(i) && fit != nil {
			s.Notes = append(s.Notes, notef(NoteClockOffset, "timed across the two nodes' clocks with the offset the probes bound: each probe within +/-%.1f us", fit.bound/1e3))
		}
		if !m.sameNode(i) && fit == nil {
			s.Notes = append(s.Notes, Note{Kind: NoteClockOffset, Text: "not timed: no clock offset could be estimated; the wire's round trip is in merge.wire_rtt_us"})
		}
		segs[i] = s
	}
	r := &Result{Points: m.points, Segments: segs}
	noteSegments(r, spans)
	return segs, tm
}

// duration is one probe's time in span sp: on one node's clock, or across
// the wire with the fitted offset at the probe's send time.
func (m *mergedPath) duration(sp span, at []sighting, fit *fitAt, p probePair) (time.Duration, bool) {
	start, from, to := at[sp.start], at[sp.from], at[sp.to]
	if !start.ok || !from.ok || !to.ok {
		return 0, false
	}
	d := float64(to.ns - start.ns)
	switch sp.from {
	case m.reqWire, m.repWire:
		if fit == nil {
			return 0, false
		}
		t := p.a.At[m.aTx]
		if t == 0 {
			t = p.a.At[m.aRx]
		}
		th := fit.offset(fit.x(t))
		if sp.from == m.reqWire {
			d -= th
		} else {
			d += th
		}
	}
	return time.Duration(d), true
}

// describe names segment i's ends, direction and class.
func (m *mergedPath) describe(i int) Segment {
	from, to := m.steps[i], m.steps[i+1]
	s := Segment{From: from.point.ID, To: to.point.ID, Direction: DirRequest, Class: ClassForwarding}
	if from.reply {
		s.Direction = DirReply
	}
	pod := func(st mstep) bool { return st.point.Kind == string(topology.KindPod) }
	switch {
	case i == m.reqWire || i == m.repWire:
		s.Class = ClassNetwork
	case !from.reply && to.reply:
		s.Class = ClassTarget
	case from.node == 0 && !from.reply && pod(from), from.node == 1 && from.reply && pod(from):
		s.Class = ClassEgress
	case pod(to):
		s.Class = ClassIngress
	}
	return s
}

// lose places the unanswered probes: lost in the segment after the last
// step they were seen at, or unknown when the capture at that segment's
// end dropped packets (it may have passed unseen), as trace places them.
// A probe the source saw come back (or answered)
// that the target never saw is a disagreement, not a loss.
func (m *mergedPath) lose(segs []Segment, lines [][]sighting, pairs []probePair) []Disagreement {
	var ds []Disagreement
	for k, at := range lines {
		back := false
		for i := m.repWire + 1; i < len(at); i++ {
			back = back || at[i].ok
		}
		if pairs[k].b == nil && back {
			ds = addDisagreement(ds, DisagreeUnseenAtTarget, pairs[k].a.Seq)
			continue
		}
		if at[len(at)-1].ok {
			continue
		}
		for i := len(at) - 2; i >= 0; i-- {
			if !at[i].ok {
				continue
			}
			if m.steps[i+1].point.Dropped() { // it may have passed there unseen
				segs[i].Unknown++
			} else {
				segs[i].Lost++
			}
			break
		}
	}
	return ds
}

// mergedVerdict names the segment that explains most of the latency, and
// the one that lost the most probes. A segment holding half the median
// round trip or more is a standing delay, named by its share of the
// median (a wire's half only if it holds that whatever the clock offset
// within its bound: wireStands); otherwise the segment with the largest
// share of the latency above the fastest probe is, as trace's verdict
// names it (or of the median, when too few probes were timed everywhere).
func mergedVerdict(r *Result, tm *timed) Verdict {
	v, ok := byMedian(r)
	switch {
	case !ok || v.Share < standingShare:
		if ve, oke := tm.byExcess(r); oke {
			v, ok = ve, oke
		}
	case v.Class == ClassNetwork && !wireStands(r, v):
		// How a standing delay splits between the wire's two directions is
		// the clock offset's doing, within its bound; a spread on one of
		// them, which no offset moves to the other, says the direction.
		if ve, oke := tm.byExcess(r); oke && ve.Class == ClassNetwork {
			v = ve
		}
	}
	switch {
	case !ok:
		v = Verdict{Text: "no segment could be measured on its own"}
	case v.Class == ClassTarget:
		for _, seg := range r.Segments {
			if seg.Class == ClassTarget {
				v.Text = strings.Replace(v.Text, where(r, seg), mergedWhere(r, seg), 1)
			}
		}
	}
	if l := worstLoss(r); l != nil {
		v.Loss = l
		v.Text = lossText(r, l) + v.Text
	}
	return v
}

// wireStands reports whether the wire half v names holds standingShare of
// the median round trip whatever the clock offset within its bound: an
// error e in the offset moves every request by -e and every reply by +e,
// so the half counts with its p50 less the bound.
func wireStands(r *Result, v Verdict) bool {
	if r.Merge == nil {
		return true
	}
	for _, s := range r.Segments {
		if s.Class == ClassNetwork && s.From == v.From && s.To == v.To && s.Direction == v.Direction && s.US != nil && s.US.P50 > 0 {
			return v.Share*(1-r.Merge.Clock.BoundUS/s.US.P50) >= standingShare
		}
	}
	return true
}

// byExcess compares every probe timed in every separable segment with the
// fastest of them, with trace's own verdict (byExcess over a tally): a
// probe's round trip is the sum of its separable spans, which tile the
// path, so the wires' halves, whose split depends on the clock offset,
// add up to what no offset changes.
func (tm *timed) byExcess(r *Result) (Verdict, bool) {
	n := len(tm.spans)
	t := &tally{plan: tm.spans, fastestSpans: make([]time.Duration, n), spanSums: make([]time.Duration, n)}
	for k := range tm.d {
		rtt, all := time.Duration(0), true
		for i, sp := range tm.spans {
			if sp.separable {
				all = all && tm.ok[k][i]
				rtt += tm.d[k][i]
			}
		}
		if all {
			t.foldProbe(rtt, func(i int) time.Duration { return tm.d[k][i] })
		}
	}
	return byExcess(r, t, tm.spans)
}

// mergedWhere describes a merged report's segment for a sentence: the
// target pod's own stack by what it is, the others as trace does.
func mergedWhere(r *Result, s Segment) string {
	if s.Class == ClassTarget {
		return fmt.Sprintf("the target pod's own stack, behind %s (from the request's arrival to the reply's departure)", r.point(s.From).Name())
	}
	return where(r, s)
}
