package report

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// span is the part of the timeline a segment measures: its own steps from
// and to, and start, where its samples begin (an earlier step when
// non-separable segments were merged into it).
type span struct {
	from, to, start int
	separable       bool
	samples         int // probes timed over the span
}

// measure builds the segments between consecutive steps, in timeline order,
// the spans their samples cover, and the losses outside every segment. A
// run of non-separable segments is merged into the first separable segment
// after it.
func measure(steps []step, lines []*timeline) ([]Segment, []span, StackLoss) {
	nseg := len(steps) - 1
	segs := make([]Segment, 0, nseg)
	spans := make([]span, 0, nseg)
	lost, unknown, stack := lossBySegment(steps, lines)
	chain := -1 // first step of the pending non-separable run
	for i := 0; i < nseg; i++ {
		seg := describe(steps, i)
		sp := span{from: i, to: i + 1, start: i}
		seen, inherited := count(steps, lines, i)
		seg.Seen, seg.Lost, seg.Unknown = seen, lost[i], unknown[i]
		seg.Separable = seen == 0 || 2*inherited < seen
		if !seg.Separable {
			if chain < 0 {
				chain = i
			}
			seg.Notes = []Note{inheritNote(steps, i, inherited, seen)}
			segs, spans = append(segs, seg), append(spans, sp)
			continue
		}
		if chain >= 0 {
			sp.start = chain
			seg.MergedFrom = steps[chain].point.ID
			chain = -1
		}
		sp.separable = true
		ds := samples(lines, sp)
		sp.samples, seg.US = len(ds), dist(ds)
		segs, spans = append(segs, seg), append(spans, sp)
	}
	finishNotes(segs, chain)
	return segs, spans, stack
}

// finishNotes says where each non-separable segment's time went, in its
// first note and in Note, which repeats it; those from tail on have no
// separable segment after them.
func finishNotes(segs []Segment, tail int) {
	for i := range segs {
		s := &segs[i]
		switch {
		case s.Separable:
			continue
		case tail >= 0 && i >= tail:
			s.Notes[0].Text += "; it is at the end of the path: there is no later segment to merge it into, so its time is not reported"
		default:
			s.Notes[0].Text += "; merged into the next separable segment"
		}
		s.Note = s.Notes[0].String()
	}
}

// describe names a segment's ends, direction and class.
func describe(steps []step, i int) Segment {
	from, to := steps[i], steps[i+1]
	seg := Segment{From: from.point.ID, To: to.point.ID, Direction: DirRequest}
	pod := from.point.Kind == topology.KindPod || to.point.Kind == topology.KindPod
	switch {
	case !from.reply && to.reply && from.point.Kind == topology.KindVeth:
		seg.Class = ClassPeer // the path ends at another pod's veth on this node
	case !from.reply && to.reply:
		seg.Class = ClassNetwork
	case from.reply:
		seg.Direction = DirReply
		seg.Class = ClassForwarding
		if pod {
			seg.Class = ClassIngress
		}
	case pod:
		seg.Class = ClassEgress
	default:
		seg.Class = ClassForwarding
	}
	return seg
}

// count returns how many probes were observed at both ends of segment i, and
// how many of those carry an inherited stamp at the end: an skb stamp on RX
// exactly equal to the start's time (design.md, kernel fact 1).
func count(steps []step, lines []*timeline, i int) (seen, inherited int) {
	for _, l := range lines {
		a, b := l.at[i], l.at[i+1]
		if !a.ok || !b.ok {
			continue
		}
		seen++
		if b.skb && steps[i+1].dir == topology.RX && b.ns == a.ns {
			inherited++
		}
	}
	return seen, inherited
}

// lossBySegment counts, per segment, the probes that were never answered and
// whose last observation is the segment's start. A probe that is missing at
// one point but seen further on was not lost there. Such a probe is lost in
// the segment when the capture at its end dropped nothing; otherwise it may
// have passed the end unseen, and it is unknown. Probes never observed, or
// last observed at the last step (the reply back at the first point), were
// lost in the source's own stack.
func lossBySegment(steps []step, lines []*timeline) (lost, unknown []int, stack StackLoss) {
	nseg := len(steps) - 1
	lost, unknown = make([]int, max(nseg, 0)), make([]int, max(nseg, 0))
	for _, l := range lines {
		if l.probe.Answered() {
			continue
		}
		last := l.last()
		switch {
		case last < 0 && len(steps) > 0 && steps[0].dropped && l.probe.SendErr == nil:
			stack.Unknown++
		case last < 0:
			stack.Request++
			if err := l.probe.SendErr; err != nil {
				stack.Refused++
				if stack.RefusedError == "" {
					stack.RefusedError = err.Error()
				}
			}
		case last >= nseg:
			stack.Reply++
		case steps[last+1].dropped:
			unknown[last]++
		default:
			lost[last]++
		}
	}
	return lost, unknown, stack
}

// samples returns the durations of a separable span over the probes observed
// at both of its own ends and at its start.
func samples(lines []*timeline, sp span) []time.Duration {
	var ds []time.Duration
	for _, l := range lines {
		if d, ok := l.duration(sp); ok {
			ds = append(ds, d)
		}
	}
	return ds
}

// inheritNote explains why segment i is not separable.
func inheritNote(steps []step, i, inherited, seen int) Note {
	from, to := steps[i].point.Name(), steps[i+1].point.Name()
	return notef(NoteNotSeparable, "the RX stamp at %s was inherited from %s (the same skb timestamp) in %d of %d samples",
		to, from, inherited, seen)
}

// dist summarises durations as microsecond percentiles. It returns nil for no
// samples.
func dist(ds []time.Duration) *Dist {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return &Dist{
		P50: micros(rank(s, 50)),
		P90: micros(rank(s, 90)),
		P99: micros(rank(s, 99)),
		Max: micros(s[len(s)-1]),
	}
}

// rank is the nearest-rank percentile of sorted, non-empty s: the smallest
// value with at least p% of the samples at or below it.
func rank(s []time.Duration, p int) time.Duration {
	n := (p*len(s) + 99) / 100 // ceil(p/100 * len)
	return s[min(max(n, 1), len(s))-1]
}

// micros converts to microseconds rounded to 0.1.
func micros(d time.Duration) float64 {
	return round(float64(d)/float64(time.Microsecond), 10)
}

// round rounds x to 1/scale.
func round(x, scale float64) float64 {
	return math.Round(x*scale) / scale
}

// percent formats a fraction as a percentage without the sign: whole
// numbers from 10% up, one decimal below when it matters (0.5, 6, 62).
func percent(frac float64) string {
	p := frac * 100
	if math.Abs(p) >= 10 || p == math.Trunc(p) {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.1f", p)
}
