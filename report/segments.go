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

// planSpans decides which segments are separable and what each is timed
// over, from the timelines given (the first ExactProbes): a segment is not
// separable when at least half of its samples carry an inherited stamp,
// and a run of non-separable segments is merged into the first separable
// segment after it, which is timed from the run's start.
func planSpans(steps []step, lines []*timeline) []span {
	nseg := max(len(steps)-1, 0)
	seen, inherited := make([]int, nseg), make([]int, nseg)
	for i := range nseg {
		seen[i], inherited[i] = count(steps, lines, i)
	}
	spans := make([]span, nseg)
	chain := -1 // first step of the pending non-separable run
	for i := range nseg {
		sp := span{from: i, to: i + 1, start: i, separable: seen[i] == 0 || 2*inherited[i] < seen[i]}
		switch {
		case !sp.separable && chain < 0:
			chain = i
		case sp.separable && chain >= 0:
			sp.start, chain = chain, -1
		}
		spans[i] = sp
	}
	return spans
}

// segments builds the segments between consecutive steps, in timeline
// order, from what t counted over its plan, the spans their samples
// cover, and the losses outside every segment; turn is the class of the
// turnaround segment. Whether a loss is located depends on which captures
// dropped packets, which steps say.
func segments(steps []step, t *tally, turn string) ([]Segment, []span, StackLoss) {
	nseg := len(t.plan)
	segs := make([]Segment, 0, nseg)
	spans := slices.Clone(t.plan)
	lost, unknown, stack := losses(steps, t)
	trailing := nseg // the non-separable run at the end, if any, starts here
	for trailing > 0 && !t.plan[trailing-1].separable {
		trailing--
	}
	for i, sp := range t.plan {
		seg := describe(steps, i, turn)
		seg.Seen, seg.Lost, seg.Unknown, seg.Separable = t.seen[i], lost[i], unknown[i], sp.separable
		if !sp.separable {
			seg.Notes = []Note{inheritNote(steps, i, t.inherited[i], t.seen[i])}
		} else {
			if sp.start != i {
				seg.MergedFrom = steps[sp.start].point.ID
			}
			spans[i].samples, seg.US = t.timed[i].count(), t.timed[i].dist()
		}
		segs = append(segs, seg)
	}
	if trailing == nseg {
		trailing = -1
	}
	finishNotes(segs, trailing)
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

// turnClass is the class of the turnaround segment of a path that turns
// around at t: the network, a peer pod on this node, or the node's own
// stack; a turnaround this version does not know is its own class.
func turnClass(t topology.Turnaround) string {
	switch t {
	case topology.TurnNetwork:
		return ClassNetwork
	case topology.TurnPeer:
		return ClassPeer
	case topology.TurnNode:
		return ClassNode
	}
	return string(t)
}

// describe names a segment's ends, direction and class; turn is the class
// of the turnaround segment, from the last request step to the first reply
// step.
func describe(steps []step, i int, turn string) Segment {
	from, to := steps[i], steps[i+1]
	seg := Segment{From: from.point.ID, To: to.point.ID, Direction: DirRequest}
	pod := from.point.Kind == topology.KindPod || to.point.Kind == topology.KindPod
	switch {
	case !from.reply && to.reply:
		seg.Class = turn
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
		if inheritedAt(steps, l.at, i+1) {
			inherited++
		}
	}
	return seen, inherited
}

// losses places the unanswered probes t counted: a probe last observed
// at a step was lost in the segment after it when the capture at that
// segment's end dropped nothing; otherwise it may have passed the end
// unseen, and it is unknown. A probe missing at one point but seen further
// on was not lost there. Probes never observed were lost in the source's
// own stack on the way out (unknown when the first point's capture
// dropped packets); those whose reply reached the first point but not the
// socket, on the way in (stack.Reply, before cnitrace's own drops are
// taken out of it).
func losses(steps []step, t *tally) (lost, unknown []int, stack StackLoss) {
	nseg := len(t.plan)
	lost, unknown = make([]int, nseg), make([]int, nseg)
	for k := range nseg {
		if steps[k+1].dropped {
			unknown[k] += t.lastAt[k]
		} else {
			lost[k] += t.lastAt[k]
		}
	}
	stack.Request, stack.Refused, stack.RefusedError = t.refused, t.refused, t.refusedErr
	if len(steps) > 0 && steps[0].dropped {
		stack.Unknown = t.never
	} else {
		stack.Request += t.never
	}
	stack.Reply = t.unread
	return lost, unknown, stack
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
	d := durations{exact: slices.Clone(ds)}
	return d.dist()
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
