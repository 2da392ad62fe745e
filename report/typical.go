package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// TypicalProbe is one real probe of the run, as it crossed every step of
// its timeline: the one a waterfall draws. It is chosen among the exact
// timelines (the first ExactProbes probes) that were seen at every step:
// the one whose path round trip, from its capture stamp at the first step
// to that at the last, is the median (nearest rank, the lower of the two
// middle ones on an even count; on a tie, the lowest sequence). Its
// offsets add up to the path round trip exactly as that probe saw it, so
// a drawing of it is to scale, which percentiles of separate segments are
// not.
type TypicalProbe struct {
	Seq uint32 `json:"seq"`
	// Steps are the probe's sightings in timeline order: the request at
	// every point of the path, then the reply at every point back, one per
	// step (2 per point).
	Steps []ProbeStep `json:"steps"`
}

// ProbeStep is one step of a TypicalProbe.
type ProbeStep struct {
	Point     string `json:"point"`     // the point's ID
	Direction string `json:"direction"` // DirRequest or DirReply
	// OffsetUS is the step's capture stamp minus the first step's, in
	// microseconds rounded to 0.1 as in Dist.
	OffsetUS float64 `json:"offset_us"`
	// Inherited says the stamp is not this step's own: an skb stamp on RX
	// equal to the previous step's, handed up from the device below
	// (docs/report-format.md, Inherited timestamps). The time between the
	// two steps is then not separable: it shows in the next step whose
	// stamp is its own.
	Inherited bool `json:"inherited"`
}

// typicalProbe picks the typical probe of lines, the exact timelines laid
// out over steps; nil when none was seen at every step.
func typicalProbe(steps []step, lines []*timeline) *TypicalProbe {
	type candidate struct {
		l   *timeline
		rtt time.Duration
	}
	var cands []candidate
	for _, l := range lines {
		if len(l.at) != len(steps) || len(steps) == 0 || !l.complete() {
			continue
		}
		rtt, _ := l.captureRTT()
		cands = append(cands, candidate{l, rtt})
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.rtt, b.rtt), cmp.Compare(a.l.probe.Seq, b.l.probe.Seq))
	})
	median := cands[(len(cands)-1)/2].rtt // nearest rank, as Dist's p50
	i, _ := slices.BinarySearchFunc(cands, median, func(c candidate, d time.Duration) int { return cmp.Compare(c.rtt, d) })
	l := cands[i].l // the lowest sequence of those that took the median
	tp := &TypicalProbe{Seq: l.probe.Seq, Steps: make([]ProbeStep, len(steps))}
	for i, st := range steps {
		dir := DirRequest
		if st.reply {
			dir = DirReply
		}
		tp.Steps[i] = ProbeStep{
			Point:     st.point.ID,
			Direction: dir,
			OffsetUS:  micros(l.at[i].since(l.at[0])),
			Inherited: i > 0 && inheritedAt(steps, l.at, i),
		}
	}
	return tp
}

// inheritedAt reports whether the stamp at step i (above 0) was inherited
// from step i-1: an skb stamp on RX exactly equal to the one before
// (design.md, kernel fact 1). It is the rule count applies to a
// segment's samples.
func inheritedAt(steps []step, at []sighting, i int) bool {
	a, b := at[i-1], at[i]
	return a.ok && b.ok && b.skb && steps[i].dir == topology.RX && b.ns == a.ns
}
