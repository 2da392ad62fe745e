package report

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// mstep is one step of a merged timeline: a step of one node's stamps.
type mstep struct {
	node  int // 0: the source node, 1: the target node
	idx   int // the step's index in that node's Steps (and At)
	point Point
	reply bool
	dir   topology.Dir
}

// mergedPath is the merged timeline's layout: the source's request steps,
// the target's request and reply steps, the source's reply steps.
type mergedPath struct {
	steps              []mstep
	points             []Point
	ids                [2]map[string]string // per node, its point IDs to the merged ones
	reqWire, repWire   int                  // the segments that cross the wire
	aTx, aRx, bRx, bTx int                  // the uplinks' steps, as node step indexes
}

// layout lays out the merged timeline of src's points and l's, l's points
// named with prefix id.
func layout(src *Result, l *Stamps, id string) *mergedPath {
	a := src.Stamps
	nA, nB := len(a.Steps)/2, len(l.Steps)/2
	m := &mergedPath{ids: [2]map[string]string{{}, {}}}
	for i, pt := range a.Path.Points {
		m.ids[0][pt.ID] = "a" + strconv.Itoa(i)
		p := src.point(pt.ID)
		if p.Interface == "" {
			p = pointOf(pt, pt.RequestDir)
		}
		p.ID = m.ids[0][pt.ID]
		m.points = append(m.points, p)
	}
	for k := range nB { // the target's points in the order requests cross them
		pt, _ := l.Path.Point(l.Steps[k].Point)
		m.ids[1][pt.ID] = id + strconv.Itoa(k)
		p := pointOf(pt, l.Steps[k].Dir)
		p.ID = m.ids[1][pt.ID]
		if c, ok := l.Captures[pt.ID]; ok {
			p.Capture = &c
		}
		m.points = append(m.points, p)
	}
	add := func(node int, s *Stamps, lo, hi int) {
		for i := lo; i < hi; i++ {
			st := s.Steps[i]
			m.steps = append(m.steps, mstep{node: node, idx: i, point: m.point(m.ids[node][st.Point]), reply: st.Reply, dir: st.Dir})
		}
	}
	add(0, a, 0, nA)
	add(1, l, 0, 2*nB)
	add(0, a, nA, 2*nA)
	m.reqWire, m.repWire = nA-1, nA+2*nB-1
	m.aTx, m.aRx, m.bRx, m.bTx = nA-1, nA, 0, 2*nB-1
	return m
}

// pointOf is the report's point for a topology point crossed by requests
// in dir.
func pointOf(pt topology.Point, dir topology.Dir) Point {
	return Point{ID: pt.ID, Interface: pt.Interface, NetNS: pt.NetNS, Ifindex: pt.Ifindex, Kind: string(pt.Kind), RequestDir: string(dir), TunnelPort: pt.TunnelPort}
}

func (m *mergedPath) point(id string) Point {
	for _, p := range m.points {
		if p.ID == id {
			return p
		}
	}
	return Point{ID: id}
}

// at is the merged timeline of one probe pair.
func (m *mergedPath) at(p probePair) []sighting {
	at := make([]sighting, len(m.steps))
	for i, s := range m.steps {
		ps := p.a
		if s.node == 1 {
			ps = p.b
		}
		if ps == nil || ps.At[s.idx] == 0 {
			continue
		}
		at[i] = sighting{ns: ps.At[s.idx], ok: true, skb: ps.SKB&(1<<s.idx) != 0}
	}
	return at
}

// mergePair merges src's probes in pairs with what listener l (the node
// called id) saw of them.
func mergePair(src *Result, l *Stamps, id string, pairs []probePair) (*Result, error) {
	m := layout(src, l, id)
	fit, clockErr := m.fitPairs(pairs)
	pairs, outside := m.inWindow(pairs, l, fit)
	lines := make([][]sighting, len(pairs))
	for i, p := range pairs {
		lines[i] = m.at(p)
	}
	r := mergedResult(src, m)
	mg := &Merged{
		Nodes: []MergedNode{
			{ID: "a", Node: src.Stamps.Node, Role: RoleTrace, Pod: addrString(src.Stamps.Path.Source.Addr)},
			{ID: id, Node: l.Node, Role: RoleListen, Pod: addrString(l.Path.Source.Addr)},
		},
		RunID: src.Stamps.Runs[0].RunID, Probes: len(pairs), OutsideWindow: outside,
		Clock: clockOf(fit, clockErr),
	}
	r.Merge = mg
	var tm *timed
	r.Segments, tm = m.segments(lines, fit, pairs)
	mg.Disagreements = m.lose(r.Segments, lines, pairs)
	m.wires(mg, pairs, fit)
	for _, p := range pairs {
		if p.b != nil {
			mg.Matched++
		}
	}
	mg.Directions = directions(mg)
	var rtts []time.Duration
	for _, at := range lines {
		if first, last := at[0], at[len(at)-1]; first.ok && last.ok {
			rtts = append(rtts, last.since(first))
		}
	}
	r.PathRTT = dist(rtts)
	r.Verdict = mergedVerdict(r, tm)
	return r, nil
}

// mergedResult is src's report with the merged path's points, and
// without what only a one-node report has (stamps, baseline, the typical
// probe's waterfall).
func mergedResult(src *Result, m *mergedPath) *Result {
	r := *src
	r.Points = m.points
	r.Stamps, r.Baseline, r.Typical, r.Timelines = nil, nil, nil, nil
	r.Rewrites = nil
	for _, w := range src.Rewrites {
		w.From, w.To = m.ids[0][w.From], m.ids[0][w.To]
		r.Rewrites = append(r.Rewrites, w)
	}
	if src.Backends != nil {
		b := *src.Backends
		b.At = m.ids[0][b.At]
		r.Backends = &b
	}
	return &r
}

// wireSample is the clock sample of probe p, if it was seen at both
// uplinks both ways; t0 is the run's first stamp.
func (m *mergedPath) wireSample(p probePair, t0 int64) (clockSample, bool) {
	if p.b == nil {
		return clockSample{}, false
	}
	aTx, aRx, bRx, bTx := p.a.At[m.aTx], p.a.At[m.aRx], p.b.At[m.bRx], p.b.At[m.bTx]
	if aTx == 0 || aRx == 0 || bRx == 0 || bTx == 0 {
		return clockSample{}, false
	}
	return clockSample{x: float64(aTx-t0) / 1e9, f: float64(bRx - aTx), r: float64(aRx - bTx)}, true
}

// t0 is the first request stamp at the source's uplink, the origin of the
// clock fit's time.
func (m *mergedPath) t0(pairs []probePair) int64 {
	var t0 int64
	for _, p := range pairs {
		if t := p.a.At[m.aTx]; t != 0 && (t0 == 0 || t < t0) {
			t0 = t
		}
	}
	return t0
}

// fitPairs fits the clock offset to the pairs seen at both uplinks.
func (m *mergedPath) fitPairs(pairs []probePair) (*fitAt, error) {
	t0 := m.t0(pairs)
	var samples []clockSample
	for _, p := range pairs {
		if s, ok := m.wireSample(p, t0); ok {
			samples = append(samples, s)
		}
	}
	c, err := fitClock(samples)
	if err != nil {
		return nil, err
	}
	return &fitAt{clockFit: c, t0: t0}, nil
}

// fitAt is a clock fit and its time origin.
type fitAt struct {
	*clockFit
	t0 int64
}

// x is the fit's time of a source stamp.
func (f *fitAt) x(ns int64) float64 { return float64(ns-f.t0) / 1e9 }

// inWindow leaves out the probes the listener was not capturing for: sent
// (on the target's clock, by the fit) before its start or after its end,
// and unseen there. Without a fit or a window, it keeps every probe.
func (m *mergedPath) inWindow(pairs []probePair, l *Stamps, fit *fitAt) ([]probePair, int) {
	if fit == nil || l.Start.IsZero() || l.End.IsZero() {
		return pairs, 0
	}
	start, end := l.Start.UnixNano(), l.End.UnixNano()
	kept, outside := pairs[:0:0], 0
	for _, p := range pairs {
		t := p.a.At[m.aTx]
		if p.b == nil && t != 0 {
			at := float64(t) + fit.offset(fit.x(t))
			if at < float64(start) || at > float64(end) {
				outside++
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept, outside
}

// clockOf is the report's form of a fit.
func clockOf(f *fitAt, err error) *MergedClock {
	if err != nil {
		return &MergedClock{Error: err.Error()}
	}
	return &MergedClock{
		Samples: f.n, OffsetUS: round(f.offset(0)/1e3, 10), DriftPPM: round(f.b/1e3, 100),
		DriftFitted: f.drift, BoundUS: round(f.bound/1e3, 10),
	}
}

// wires fills in the wire's round trip and its two one-way halves.
func (m *mergedPath) wires(mg *Merged, pairs []probePair, fit *fitAt) {
	var rtt, req, rep []time.Duration
	for _, p := range pairs {
		s, ok := m.wireSample(p, 0)
		if !ok {
			continue
		}
		rtt = append(rtt, time.Duration(s.f+s.r))
		if fit != nil {
			th := fit.offset(fit.x(p.a.At[m.aTx]))
			req = append(req, time.Duration(s.f-th))
			rep = append(rep, time.Duration(s.r+th))
		}
	}
	mg.WireRTT, mg.Request, mg.Reply = dist(rtt), dist(req), dist(rep)
}

// directions says which way the wire is slower, or that the bound cannot
// tell: an error e in the offset moves every request by -e and every reply
// by +e, so the two differ for sure only by more than twice the bound.
func directions(mg *Merged) string {
	c := mg.Clock
	switch {
	case c.Error != "":
		return "the one-way split is not given: " + c.Error
	case mg.Request == nil || mg.Reply == nil:
		return "the one-way split is not given: no probe was seen at both uplinks both ways"
	}
	d50, d90 := mg.Request.P50-mg.Reply.P50, mg.Request.P90-mg.Reply.P90
	width := 2 * c.BoundUS
	for _, d := range []struct {
		name string
		diff float64
	}{{"p90", d90}, {"p50", d50}} {
		if d.diff > width || -d.diff > width {
			slower, faster := "request", "reply"
			if d.diff < 0 {
				slower, faster = faster, slower
			}
			return fmt.Sprintf("the %s wire is slower than the %s wire: their %ss differ by %.1f us, more than twice the offset bound (+/-%.1f us)",
				slower, faster, d.name, math.Abs(d.diff), c.BoundUS)
		}
	}
	return fmt.Sprintf("the offset bound (+/-%.1f us) is too wide to tell the directions apart: the one-way p50s differ by %.1f us and the p90s by %.1f us, within twice the bound",
		c.BoundUS, math.Abs(d50), math.Abs(d90))
}
