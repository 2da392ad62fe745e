package report

import (
	"fmt"
	"time"
)

// standing is a standing delay found in a run: segment seg (an index of
// Result.Segments) took every probe at least floor, where the reference
// span, the same points crossed the other way (steps refFrom to refTo),
// took at least ref; excess is floor minus ref (ref counted as 0 when
// negative, a clock artefact).
type standing struct {
	seg              int
	floor, ref       time.Duration
	excess, fastest  time.Duration
	refFrom, refTo   int
	share            float64 // excess over fastest, at most 1
	refFromID, refID string
}

// floorOf looks for a standing delay. Spread-based attribution (byExcess)
// cannot see one: when every probe waits in the same queue, the fastest
// probe waited too, and only what varies around that wait is "above the
// fastest probe". So each separable segment's floor, its minimum over all
// probes (over its measured span when merged), is compared with what the
// same hop costs when nothing holds it up: the same two points crossed the
// other way, the minimum over the exact timelines. The turnaround has no
// other way and is never a candidate. A segment qualifies when its floor
// exceeds the reference's by at least half the fastest complete probe's
// round trip (between the first point's captures) and is at least twice
// it; the largest excess wins. It returns nil when no segment qualifies.
func floorOf(r *Result, steps []step, t *tally, lines []*timeline) *standing {
	if t.complete == 0 || t.fastest <= 0 || len(steps) < 2 {
		return nil
	}
	var best *standing
	for i, sp := range t.plan {
		if !sp.separable || t.timed[i].count() == 0 {
			continue
		}
		from, to, ok := mirror(t.plan, sp.start, sp.to, len(steps)/2)
		if !ok {
			continue
		}
		ref, ok := minSpan(lines, from, to)
		if !ok {
			continue
		}
		floor, base := t.timed[i].rank(0), max(ref, 0)
		excess := floor - base
		if 2*excess < t.fastest || floor < 2*base || (best != nil && excess <= best.excess) {
			continue
		}
		best = &standing{seg: i, floor: floor, ref: ref, excess: excess, fastest: t.fastest, refFrom: from, refTo: to,
			share: min(float64(excess)/float64(t.fastest), 1), refFromID: steps[from].point.ID, refID: steps[to].point.ID}
	}
	if best != nil && best.seg >= len(r.Segments) {
		return nil
	}
	return best
}

// mirror returns the steps of the span from start to to crossed the other
// way, for a timeline of n points (request steps 0 to n-1, reply steps n
// to 2n-1, step k's point crossed again at step 2n-1-k): from the mirror
// of to to the mirror of start. When the mirror's last step carries a
// stamp inherited from the step before it (plan says that segment is not
// separable), the span is extended to the next step of the same
// direction, so that it measures something. It returns false for a span
// that crosses the turnaround, or one that cannot be extended.
func mirror(plan []span, start, to, n int) (from, end int, ok bool) {
	if (start < n) != (to < n) {
		return 0, 0, false
	}
	from, end = 2*n-1-to, 2*n-1-start
	last := n - 1 // the last step of the mirror's direction
	if from >= n {
		last = 2*n - 1
	}
	for !plan[end-1].separable {
		if end == last {
			return 0, 0, false
		}
		end++
	}
	return from, end, true
}

// minSpan is the least time from step a to step b over the timelines that
// saw both.
func minSpan(lines []*timeline, a, b int) (time.Duration, bool) {
	var least time.Duration
	found := false
	for _, l := range lines {
		if !l.at[a].ok || !l.at[b].ok {
			continue
		}
		if d := l.at[b].since(l.at[a]); !found || d < least {
			least, found = d, true
		}
	}
	return least, found
}

// withFloor adds the standing delay f (nil: none) to the verdict v. When f
// explains more than the spread, that is when its excess is at least the
// median probe's RTT above the fastest one's, or v is not by excess, f
// leads (BasisFloor), followed by what v said (only its share when it
// named the same segment); otherwise v leads and f follows it. ok says v
// named a segment.
func withFloor(r *Result, t *tally, v Verdict, ok bool, f *standing) Verdict {
	if f == nil {
		return v
	}
	seg := r.Segments[f.seg]
	fl := &Floor{
		From: seg.From, To: seg.To, Direction: seg.Direction, Class: seg.Class,
		FloorUS: micros(f.floor), ReferenceUS: micros(f.ref),
		RefFrom: f.refFromID, RefTo: f.refID, RefDirection: directionOf(f.refFrom, len(r.Points)),
		Share: round(f.share, 100),
	}
	text := floorText(r, seg, fl, f)
	spread := t.rtts.rank(50) - t.fastest
	if v.Basis == BasisExcess && f.excess < spread {
		v.Text += "; also, " + text
		v.Floor = fl
		return v
	}
	lead := segVerdict(seg, f.share, BasisFloor)
	lead.Text, lead.Floor = text, fl
	switch {
	case v.Basis == BasisExcess && v.From == seg.From && v.To == seg.To && v.Direction == seg.Direction:
		lead.Text += fmt.Sprintf("; %s%% of the latency above the fastest probe (p50 +%s) is there too", percent(v.Share), duration(spread))
	case ok:
		lead.Text += "; " + v.Text
	}
	return lead
}

// floorText says where the standing delay is, against what, and that it
// is one.
func floorText(r *Result, seg Segment, fl *Floor, f *standing) string {
	return fmt.Sprintf("every probe spent at least %s in %s, where the same points take %s the other way (%s to %s, %s): a standing delay, a queue that never drains or a fixed one, not jitter (%s%% of the fastest probe's %s round trip)",
		duration(f.floor), where(r, seg), duration(f.ref), r.point(fl.RefFrom).Name(), r.point(fl.RefTo).Name(), fl.RefDirection,
		percent(f.share), duration(f.fastest))
}

// directionOf is the direction of step k in a timeline of n points.
func directionOf(k, n int) string {
	if k < n {
		return DirRequest
	}
	return DirReply
}

// duration formats d for prose: microseconds with one decimal below a
// millisecond, milliseconds with two from there.
func duration(d time.Duration) string {
	if d < time.Millisecond && d > -time.Millisecond {
		return fmt.Sprintf("%.1f us", micros(d))
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
