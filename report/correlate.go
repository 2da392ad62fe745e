package report

import (
	"net/netip"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// correlate measures every segment of the path over the timelines of the
// probes sent: pts are the path's points with their capture counters, steps
// the timeline laid out over them (buildSteps), addrs the addresses the
// probes carried at every step. It leaves Probes.Ignored, Incomplete and
// Baseline to the Accumulator, which knows them.
func correlate(path *topology.Path, probes *probe.Result, pts []Point, steps []step, lines []*timeline, addrs []stepAddrs) *Result {
	segs, spans, stack := measure(steps, lines)
	r := &Result{
		SchemaVersion: SchemaVersion,
		Target:        addrString(path.Target),
		Source: Source{
			NetNS:     path.Source.NetNS,
			Interface: path.Source.Interface,
			Addr:      addrString(path.Source.Addr),
		},
		Probes:     ProbeCounts{Sent: len(lines)},
		Translated: addrString(path.Translated),
		Points:     pts,
		Rewrites:   withAddrs(steps, addrs, pts),
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
	return r
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
