package report

import (
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// step is one expected crossing of a point in a probe's timeline.
type step struct {
	point topology.Point
	reply bool
	dir   topology.Dir
	// dropped is set when the point's capture dropped packets: a probe
	// missing there may have passed unseen.
	dropped bool
}

// sighting is the earliest observation of one probe at one step. It is
// kept to 16 bytes: a long run holds one per probe and step.
type sighting struct {
	ns  int64 // the kernel stamp, Unix nanoseconds
	ok  bool  // the probe was seen at this step
	skb bool  // the stamp is the skb's own (capture.StampSKB), maybe inherited
}

// time returns the stamp as a time.Time.
func (s sighting) time() time.Time { return time.Unix(0, s.ns) }

// since returns s minus start.
func (s sighting) since(start sighting) time.Duration { return time.Duration(s.ns - start.ns) }

// timeline is what was seen of one probe, indexed by step. Both are the
// Accumulator's own, not copies: a report's timelines of its exact probes
// are 32 bytes each.
type timeline struct {
	probe *probe.Probe
	at    []sighting
}

// stepKey finds the step of an observation: a point is crossed once per
// direction of the probe.
type stepKey struct {
	point string
	reply bool
}

// buildSteps lays out the expected timeline: the points in order, each
// crossed in its request direction, then the points in reverse order, each
// crossed the other way. pts are the report's points, in path order.
func buildSteps(path *topology.Path, pts []Point) []step {
	n := len(path.Points)
	steps := make([]step, 0, 2*n)
	for i, p := range path.Points {
		steps = append(steps, step{point: p, dir: p.RequestDir, dropped: pts[i].Dropped()})
	}
	for i := n - 1; i >= 0; i-- {
		p := path.Points[i]
		steps = append(steps, step{point: p, reply: true, dir: p.RequestDir.Reverse(), dropped: pts[i].Dropped()})
	}
	return steps
}

// earliest keeps the earliest of duplicate observations. On a tie it prefers
// a fresh copy stamp, so the choice does not depend on input order.
func earliest(cur sighting, o capture.Observation) sighting {
	return earliestOf(cur, o.At, o.Stamp)
}

// earliestOf is earliest for an observation stamped at, by stamp.
func earliestOf(cur sighting, at time.Time, stamp capture.StampSource) sighting {
	next := sighting{ns: at.UnixNano(), ok: true, skb: stamp == capture.StampSKB}
	switch {
	case !cur.ok, next.ns < cur.ns:
		return next
	case next.ns == cur.ns && cur.skb && !next.skb:
		return next
	}
	return cur
}

// complete reports whether the probe was observed at every step.
func (l *timeline) complete() bool {
	for _, s := range l.at {
		if !s.ok {
			return false
		}
	}
	return true
}

// last returns the last step at which the probe was observed, or -1.
func (l *timeline) last() int {
	for i := len(l.at) - 1; i >= 0; i-- {
		if l.at[i].ok {
			return i
		}
	}
	return -1
}

// duration is the time the probe spent in the span.
func (l *timeline) duration(sp span) (time.Duration, bool) {
	start, from, to := l.at[sp.start], l.at[sp.from], l.at[sp.to]
	if !start.ok || !from.ok || !to.ok {
		return 0, false
	}
	return to.since(start), true
}

// stale reports whether sp cannot be timed from l's own stamps: the stamp
// at its end, or at its start, was inherited from the step before (an skb
// stamp carried over, design.md kernel fact 1), so the span would come out
// as nothing or take in the step before it. Whether a segment is separable
// is decided over the run (planSpans); in a separable one the probes whose
// stamps there are inherited are left out of its times, or the two kinds
// mix: the host's RX timestamping is on while any process on the node
// asks for receive stamps (iputils ping's SO_TIMESTAMP), and a run that
// got inherited stamps at the bridge for part of its probes reported the
// mixed median of 0 and the true time for veth -> bridge and of the true
// time and veth -> vxlan for bridge -> vxlan (benchmark section 1: 12-16
// us moves of bridge -> vxlan with nothing changed there). They still
// count as seen.
func (l *timeline) stale(steps []step, sp span) bool {
	return inheritedAt(steps, l.at, sp.to) || sp.start > 0 && inheritedAt(steps, l.at, sp.start)
}

// captureRTT is the time from the first request step to the last reply step.
func (l *timeline) captureRTT() (time.Duration, bool) {
	first, last := l.at[0], l.at[len(l.at)-1]
	if !first.ok || !last.ok {
		return 0, false
	}
	return last.since(first), true
}
