package report

import (
	"net/netip"

	"github.com/cnitrace/cnitrace/capture"
)

// Addrs are the addresses the probes carried at a point in one direction:
// those of the first observation there, and how many later ones differed
// (a Service with several backends, a NAT that changed its mind).
type Addrs struct {
	Src string `json:"src"`
	Dst string `json:"dst"`
	// Tunnel, OuterSrc and OuterDst describe the encapsulation the probe
	// was found in at this point, if any.
	Tunnel   string `json:"tunnel,omitempty"`
	OuterSrc string `json:"outer_src,omitempty"`
	OuterDst string `json:"outer_dst,omitempty"`
	Others   int    `json:"others,omitempty"`
}

// Rewrite is an address that changed between two consecutive steps of the
// probes' timeline: NAT (a Service's DNAT, a MASQUERADE) acted in between.
type Rewrite struct {
	From      string `json:"from"` // point IDs, as in segments
	To        string `json:"to"`
	Direction string `json:"direction"`
	Field     string `json:"field"` // "src" or "dst"
	Old       string `json:"old"`
	New       string `json:"new"`
}

// stepAddrs is what the accumulator keeps of one step's addresses, as
// values: rendering them to strings waits for the result, not every
// observation.
type stepAddrs struct {
	first  rawAddrs
	set    bool
	others int
	// dsts counts the probes by the destination (address and port) their
	// request carried at the step, at most maxBackends of them; dstOthers
	// the probes to further destinations.
	dsts      map[netip.AddrPort]int
	dstOthers int
}

// maxBackends bounds the destinations counted per step: a Service has a
// few endpoints, and the report lists them one by one.
const maxBackends = 16

// rawAddrs are an observation's addresses.
type rawAddrs struct {
	src, dst, outerSrc, outerDst netip.Addr
	tunnel                       string
}

// note records the addresses of an observation placed at the step, and
// with probe set (the probe's first observation at a request step) counts
// its destination. The caller holds the accumulator's lock.
func (s *stepAddrs) note(o capture.Observation, probe bool) {
	if probe {
		d := netip.AddrPortFrom(o.Dst, o.DstPort)
		switch _, ok := s.dsts[d]; {
		case ok || len(s.dsts) < maxBackends:
			if s.dsts == nil {
				s.dsts = map[netip.AddrPort]int{}
			}
			s.dsts[d]++
		default:
			s.dstOthers++
		}
	}
	a := rawAddrs{src: o.Src, dst: o.Dst, outerSrc: o.OuterSrc, outerDst: o.OuterDst, tunnel: o.Tunnel}
	switch {
	case !s.set:
		s.first, s.set = a, true
	case a != s.first:
		s.others++
	}
}

// addrs renders the step's first addresses and how many differed.
func (s stepAddrs) addrs() Addrs {
	a := s.first
	return Addrs{
		Src: addrString(a.src), Dst: addrString(a.dst), Tunnel: a.tunnel,
		OuterSrc: addrString(a.outerSrc), OuterDst: addrString(a.outerDst), Others: s.others,
	}
}

// known reports whether the step saw a probe with addresses.
func (s stepAddrs) known() bool { return s.set && (s.first.src.IsValid() || s.first.dst.IsValid()) }

// withAddrs fills pts' addresses from the steps' and returns the rewrites
// between consecutive steps that saw addresses.
func withAddrs(steps []step, book []stepAddrs, pts []Point) []Rewrite {
	byID := make(map[string]*Point, len(pts))
	for i := range pts {
		byID[pts[i].ID] = &pts[i]
	}
	var rewrites []Rewrite
	prev, prevAddrs := -1, Addrs{}
	for i, st := range steps {
		if i >= len(book) || !book[i].known() {
			continue
		}
		a := book[i].addrs()
		if p := byID[st.point.ID]; p != nil {
			if st.reply {
				p.Reply = &a
			} else {
				p.Request = &a
			}
		}
		if prev >= 0 {
			rewrites = append(rewrites, rewritesBetween(steps[prev], st, prevAddrs, a)...)
		}
		prev, prevAddrs = i, a
	}
	return rewrites
}

// rewritesBetween lists the fields that differ between the addresses at
// step a and at the next step b that saw any. Across the turnaround (a
// request step, then a reply step) the peer swaps source and destination:
// the reply is compared with the request's addresses swapped, and a
// difference is charged to the reply.
func rewritesBetween(a, b step, x, y Addrs) []Rewrite {
	dir := DirRequest
	if b.reply {
		dir = DirReply
	}
	if !a.reply && b.reply {
		x.Src, x.Dst = x.Dst, x.Src
	}
	var out []Rewrite
	for _, f := range []struct{ field, old, new string }{{"src", x.Src, y.Src}, {"dst", x.Dst, y.Dst}} {
		if f.old != f.new {
			out = append(out, Rewrite{From: a.point.ID, To: b.point.ID, Direction: dir, Field: f.field, Old: f.old, New: f.new})
		}
	}
	return out
}
