package report

import (
	"net/netip"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// correlate measures every segment of the path from t, the tally of the
// probes sent: pts are the path's points with their capture counters,
// steps the timeline laid out over them (buildSteps), lines the exact
// timelines (the first ExactProbes probes), addrs the addresses the probes
// carried at every step, probes the traced source's probe result, whose
// socket counters say what cnitrace itself missed. It leaves
// Probes.Ignored, Incomplete and Baseline to the Accumulator, which knows
// them.
func correlate(path *topology.Path, probes *probe.Result, pts []Point, steps []step, t *tally, lines []*timeline, addrs []stepAddrs) *Result {
	segs, spans, stack := segments(steps, t, turnClass(path.TurnaroundOrInferred()))
	r := &Result{
		SchemaVersion: SchemaVersion,
		Target:        addrString(path.Target),
		Source: Source{
			NetNS:     path.Source.NetNS,
			Interface: path.Source.Interface,
			Addr:      addrString(path.Source.Addr),
		},
		Probes:     ProbeCounts{Sent: t.probes, Received: t.answered, Late: t.late},
		Translated: addrString(path.Translated),
		Points:     pts,
		Rewrites:   withAddrs(steps, addrs, pts),
		Segments:   segs,
		Stack:      stack,
	}
	if r.Target == "" {
		r.Target = addrString(probes.Target)
	}
	if t.probes > ExactProbes {
		r.ExactProbes = ExactProbes
	}
	ownDrops(r, probes)
	noteSegments(r, spans)
	r.Timelines = probeTimelines(lines)
	r.Typical = typicalProbe(steps, lines)
	roundTrips(r, t)
	r.Verdict = verdict(r, t, spans, floorOf(r, steps, t, lines))
	return r
}

// ownDrops takes out of stack_loss.reply what cnitrace's own socket
// missed: of the probes whose reply reached the source interface in time
// but was never read, as many as the socket dropped packets or read
// replies late (beyond the late probes, whose replies it may have read
// too). The rest stay the source stack's: netfilter INPUT dropped them.
func ownDrops(r *Result, probes *probe.Result) {
	if probes.SocketDrops == 0 && probes.LateReplies == 0 {
		return
	}
	r.Socket = &SocketStats{Drops: probes.SocketDrops, LateReplies: probes.LateReplies}
	missed := probes.SocketDrops + uint64(max(probes.LateReplies-r.Probes.Late, 0))
	own := min(uint64(r.Stack.Reply), missed)
	r.Probes.Dropped = int(own)
	r.Stack.Reply -= int(own)
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
			TunnelPort: p.TunnelPort,
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
