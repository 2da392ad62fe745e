package report

import (
	"fmt"
	"strings"
)

// htmlChain is the path drawn as a chain of points, from the probe socket
// to what answers beyond the last point, with the segments between them:
// the request and the reply between two points side by side, the
// turnaround after the last.
type htmlChain struct {
	Measured bool   // the segments carry figures (a report, not a path)
	Source   string // where the probe socket is
	Stack    *htmlLink
	Items    []htmlChainItem
	Beyond   string // what lies beyond the last point
	Target   string
	NAT      []string // the translation discovery followed, on a path page
}

// htmlChainItem is a point or the link to the next one.
type htmlChainItem struct {
	Point *htmlPoint
	Link  *htmlLink
}

// htmlPoint is one capture point.
type htmlPoint struct {
	ID, Interface, NetNS, Kind, RequestDir string
	Ifindex, TunnelPort                    int
	Capture                                string // its capture's counters; "" when none
	Dropped                                bool   // the capture dropped packets or froze
	Addrs                                  string // the request's addresses there, when NAT acted
}

// htmlLink is what lies between two points of the chain: the request
// segment, and the reply segment back (nil for the turnaround).
type htmlLink struct {
	Turn           bool
	Request, Reply *htmlSeg
}

// htmlSeg is a segment as the chain shows it.
type htmlSeg struct {
	Key, Direction, Class, Hook, Label string
	Time                               string // "p50 5.4 us", or why there is none
	Merged                             string // what a merged segment is timed from
	Lost, Unknown                      int
	Turn                               bool // the turnaround: out of the last point and back
}

// htmlChainOf lays out r's path; measured says whether r's segments carry
// figures (false for a path without a run).
func htmlChainOf(r *Result, measured bool) htmlChain {
	c := htmlChain{Measured: measured, Source: sourceText(r.Source), Target: r.Target}
	if measured && len(r.Points) > 0 {
		c.Stack = htmlStackLink(r)
	}
	end := htmlTrailing(r.Segments)
	find := func(from, to, dir string) *htmlSeg {
		for i, s := range r.Segments {
			if s.From == from && s.To == to && s.Direction == dir {
				return htmlSegOf(r, s, measured, i >= end)
			}
		}
		return nil
	}
	for i, p := range r.Points {
		c.Items = append(c.Items, htmlChainItem{Point: htmlPointOf(r, p)})
		if i+1 < len(r.Points) {
			next := r.Points[i+1].ID
			c.Items = append(c.Items, htmlChainItem{Link: &htmlLink{Request: find(p.ID, next, DirRequest), Reply: find(next, p.ID, DirReply)}})
		}
	}
	if n := len(r.Points); n > 0 {
		last := r.Points[n-1].ID
		if turn := find(last, last, DirRequest); turn != nil {
			turn.Turn = true
			c.Items = append(c.Items, htmlChainItem{Link: &htmlLink{Turn: true, Request: turn}})
			c.Beyond = spanText(r, last, last, turn.Class, DirRequest)
		}
	}
	return c
}

// htmlTrailing returns the index from which the segments are
// non-separable with nothing after them to merge into.
func htmlTrailing(segs []Segment) int {
	end := len(segs)
	for end > 0 && !segs[end-1].Separable {
		end--
	}
	return end
}

// htmlStackLink is the source's own stack, between the probe socket and the
// first point: where stack_loss happened.
func htmlStackLink(r *Result) *htmlLink {
	first := r.Points[0].ID
	req := &htmlSeg{Key: PointSocket + "-" + first + "-" + DirRequest, Direction: DirRequest, Class: ClassEgress,
		Label: "probe socket -> " + r.segmentName(first), Time: "the source's own stack", Lost: r.Stack.Request, Unknown: r.Stack.Unknown}
	rep := &htmlSeg{Key: first + "-" + PointSocket + "-" + DirReply, Direction: DirReply, Class: ClassIngress,
		Label: r.segmentName(first) + " -> probe socket", Time: "the source's own stack", Lost: r.Stack.Reply}
	req.Hook, rep.Hook = htmlClassHook(req.Class), htmlClassHook(rep.Class)
	return &htmlLink{Request: req, Reply: rep}
}

// htmlSegOf describes segment s for the chain; atEnd says it is among the
// non-separable segments at the end of the path.
func htmlSegOf(r *Result, s Segment, measured, atEnd bool) *htmlSeg {
	g := &htmlSeg{Key: htmlSegmentKey(s), Direction: s.Direction, Class: s.Class, Hook: htmlClassHook(s.Class), Label: r.segmentLabel(s)}
	if !measured {
		return g
	}
	g.Lost, g.Unknown = s.Lost, s.Unknown
	switch {
	case !s.Separable || s.US == nil:
		g.Time = strings.Trim(remark(s, 0, atEnd), "()")
	default:
		g.Time = fmt.Sprintf("p50 %.1f us", s.US.P50)
	}
	if s.MergedFrom != "" {
		g.Merged = "timed from " + r.segmentName(s.MergedFrom)
	}
	return g
}

// htmlPointOf describes point p; its addresses are shown where NAT acted, as
// in the text report.
func htmlPointOf(r *Result, p Point) *htmlPoint {
	h := &htmlPoint{ID: p.ID, Interface: p.Interface, NetNS: p.NetNS, Kind: p.Kind, RequestDir: p.RequestDir,
		Ifindex: p.Ifindex, TunnelPort: p.TunnelPort, Dropped: p.Dropped()}
	if c := p.Capture; c != nil {
		h.Capture = fmt.Sprintf("capture: %d packets, %d dropped, ring frozen %d times, %d undecodable", c.Packets, c.Drops, c.Freezes, c.Undecodable)
	}
	if len(r.Rewrites) > 0 && p.Request != nil {
		h.Addrs = "request " + p.Request.Src + " > " + p.Request.Dst
	}
	return h
}
