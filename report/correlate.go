package report

import (
	"errors"
	"fmt"
	"net/netip"
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

// timeline is what was seen of one probe, indexed by step.
type timeline struct {
	probe probe.Probe
	at    []sighting
}

// stepKey finds the step of an observation: a point is crossed once per
// direction of the probe.
type stepKey struct {
	point string
	reply bool
}

// Correlate matches the capture's observations to probes by the token in
// their payload and measures every segment of the path; the capture's
// per-point statistics say where a missing probe may be the capture's fault.
// A nil capture is an empty one. It returns an error only for input it cannot
// use: a nil path or probe result, a path without points, or duplicate point
// IDs. Anything else, including no observation at all, gives a Result.
func Correlate(path *topology.Path, probes *probe.Result, capt *capture.Capture) (*Result, error) {
	if probes == nil {
		return nil, errNoProbes
	}
	acc, err := NewAccumulator(path, probes.RunID)
	if err != nil {
		return nil, err
	}
	if capt == nil {
		capt = &capture.Capture{}
	}
	for _, o := range capt.Observations {
		acc.Add(o)
	}
	return acc.Result(probes, capt.Stats)
}

// Result measures every segment of the path from what was added, for the
// probes that were sent; stats (the capture's per-point counters) say where
// a missing probe may be the capture's fault. It returns an error only for a
// nil probe result.
func (a *Accumulator) Result(probes *probe.Result, stats []capture.PointStats) (*Result, error) {
	if probes == nil {
		return nil, errNoProbes
	}
	pts := points(a.path, stats)
	steps := buildSteps(a.path, pts)
	lines, ignored := a.timelines(probes)
	segs, spans, stack := measure(steps, lines)
	r := &Result{
		SchemaVersion: SchemaVersion,
		Target:        addrString(a.path.Target),
		Source: Source{
			NetNS:     a.path.Source.NetNS,
			Interface: a.path.Source.Interface,
			Addr:      addrString(a.path.Source.Addr),
		},
		Probes:     ProbeCounts{Sent: len(lines), Ignored: ignored},
		Translated: addrString(a.path.Translated),
		Points:     pts,
		Rewrites:   a.rewrites(steps, pts),
		Segments:   segs,
		Stack:      stack,
	}
	if r.Target == "" {
		r.Target = addrString(probes.Target)
	}
	for _, l := range lines {
		if l.probe.Answered() {
			r.Probes.Received++
		}
	}
	noteSegments(r, spans)
	r.Timelines = probeTimelines(lines)
	roundTrips(r)
	r.Verdict = verdict(r, lines, spans)
	return r, nil
}

func validatePath(path *topology.Path) error {
	switch {
	case path == nil:
		return errors.New("no path")
	case len(path.Points) == 0:
		return errors.New("path has no capture points")
	}
	seen := make(map[string]bool, len(path.Points))
	for _, p := range path.Points {
		if seen[p.ID] {
			return fmt.Errorf("duplicate point ID %q in path", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
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
	next := sighting{ns: o.At.UnixNano(), ok: true, skb: o.Stamp == capture.StampSKB}
	switch {
	case !cur.ok, next.ns < cur.ns:
		return next
	case next.ns == cur.ns && cur.skb && !next.skb:
		return next
	}
	return cur
}

// points describes the path's points with their capture counters. Counters
// of unknown points are ignored; several for one point are added up.
func points(path *topology.Path, stats []capture.PointStats) []Point {
	byID := make(map[string]*PointCapture, len(stats))
	for _, st := range stats {
		c := byID[st.Point]
		if c == nil {
			c = &PointCapture{}
			byID[st.Point] = c
		}
		c.Packets += st.Packets
		c.Drops += st.Drops
		c.Freezes += st.Freezes
		c.Undecodable += st.Undecodable
	}
	pts := make([]Point, 0, len(path.Points))
	for _, p := range path.Points {
		pts = append(pts, Point{
			ID:         p.ID,
			Interface:  p.Interface,
			NetNS:      p.NetNS,
			Ifindex:    p.Ifindex,
			Kind:       string(p.Kind),
			RequestDir: string(p.RequestDir),
			Capture:    byID[p.ID],
		})
	}
	return pts
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
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

// rewrites fills pts' addresses and returns the rewrites between steps.
func (a *Accumulator) rewrites(steps []step, pts []Point) []Rewrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return withAddrs(steps, a.addrs, pts)
}
