package report

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

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

// rewrites fills pts' addresses and returns the rewrites between steps.
func (a *Accumulator) rewrites(steps []step, pts []Point) []Rewrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return withAddrs(steps, a.addrs, pts)
}
