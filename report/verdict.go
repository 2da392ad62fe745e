package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// minExcess is the average excess RTT per complete probe below which there
// is nothing to attribute and the verdict falls back to the medians.
const minExcess = time.Microsecond

// verdict attributes the latency to a segment and leads with the worst loss.
func verdict(r *Result, lines []*timeline, spans []span) Verdict {
	v, ok := Verdict{Text: "no probe was observed at any capture point"}, true
	if anySighting(lines) {
		v, ok = byExcess(r, lines, spans)
		if !ok {
			v, ok = byMedian(r)
		}
		if !ok {
			v = Verdict{Text: "no segment could be measured on its own"}
		}
	}
	if n, text := unknownText(r); n > 0 {
		v.Unknown = n
		v.Text = text + v.Text
	}
	if l := worstLoss(r); l != nil {
		v.Loss = l
		v.Text = lossText(r, l) + v.Text
	}
	return v
}

func anySighting(lines []*timeline) bool {
	for _, l := range lines {
		for _, s := range l.at {
			if s.ok {
				return true
			}
		}
	}
	return false
}

// byExcess compares every complete probe with the fastest one: the segment
// that holds the largest share of the summed extra RTT wins.
func byExcess(r *Result, lines []*timeline, spans []span) (Verdict, bool) {
	complete, extra := excess(lines)
	if len(complete) < 2 {
		return Verdict{}, false
	}
	total := 0.0
	for _, d := range extra {
		total += float64(d)
	}
	if total < float64(minExcess)*float64(len(extra)) {
		return Verdict{}, false
	}
	fastest := complete[slices.Index(extra, 0)]
	best, bestEx := -1, 0.0
	for s, sp := range spans {
		if !sp.separable {
			continue
		}
		if ex := spanExcess(complete, fastest, sp); best < 0 || ex > bestEx {
			best, bestEx = s, ex
		}
	}
	if best < 0 {
		return Verdict{}, false
	}
	share := bestEx / total
	v := segVerdict(r.Segments[best], share, BasisExcess)
	v.Text = fmt.Sprintf("%s%% of the latency above the fastest probe (p50 +%.1f us) is in %s",
		percent(share), dist(extra).P50, where(r, r.Segments[best]))
	return v, true
}

// excess returns the probes observed at every step and, for each, its
// capture RTT minus the fastest one's (0 for the fastest).
func excess(lines []*timeline) ([]*timeline, []time.Duration) {
	var complete []*timeline
	var rtts []time.Duration
	for _, l := range lines {
		if d, ok := l.captureRTT(); ok && l.complete() {
			complete, rtts = append(complete, l), append(rtts, d)
		}
	}
	if len(rtts) == 0 {
		return nil, nil
	}
	fastest := slices.Min(rtts)
	for k := range rtts {
		rtts[k] -= fastest
	}
	return complete, rtts
}

// spanExcess sums, over complete probes, the time spent in the span beyond
// what the fastest probe spent there.
func spanExcess(complete []*timeline, fastest *timeline, sp span) float64 {
	base, _ := fastest.duration(sp)
	sum := 0.0
	for _, l := range complete {
		d, _ := l.duration(sp)
		sum += float64(d) - float64(base)
	}
	return sum
}

// byMedian picks the separable segment with the largest p50 as a share of
// the sum of the separable segments' p50s.
func byMedian(r *Result) (Verdict, bool) {
	best, bestP, sum := -1, 0.0, 0.0
	for i, s := range r.Segments {
		if !s.Separable || s.US == nil {
			continue
		}
		p := max(s.US.P50, 0) // a negative median is a clock artefact, not time spent
		sum += p
		if best < 0 || p > bestP {
			best, bestP = i, p
		}
	}
	if best < 0 || sum <= 0 {
		return Verdict{}, false
	}
	share := bestP / sum
	v := segVerdict(r.Segments[best], share, BasisMedian)
	v.Text = fmt.Sprintf("the largest share of the median RTT (%s%%) is %s", percent(share), where(r, r.Segments[best]))
	return v, true
}

func segVerdict(s Segment, share float64, basis string) Verdict {
	return Verdict{
		Class:     s.Class,
		From:      s.From,
		To:        s.To,
		Direction: s.Direction,
		Share:     round(share, 100),
		Basis:     basis,
	}
}

// where describes a segment for a sentence; a merged segment is named from
// the start of what was measured.
func where(r *Result, s Segment) string {
	from := s.From
	if s.MergedFrom != "" {
		from = s.MergedFrom
	}
	return s.Class + " " + spanText(r, from, s.To, s.Class, s.Direction)
}

// spanText names where a segment lies, for prose. The network (or peer)
// segment starts and ends at the last point, so it is named as what lies
// beyond it.
func spanText(r *Result, from, to, class, direction string) string {
	switch {
	case class == ClassNetwork && from == to && !r.tunnelled():
		return fmt.Sprintf("beyond %s (out and back: wire and the remote host)", r.point(from).Name())
	case class == ClassNetwork && from == to:
		return fmt.Sprintf("beyond %s (out and back: wire, remote node, remote pod)", r.point(from).Name())
	case class == ClassPeer && from == to:
		return fmt.Sprintf("beyond %s (out and back: the peer pod on this node)", r.point(from).Name())
	case from == PointSocket:
		return fmt.Sprintf("the source's own stack, between the probe socket and %s (%s)", r.point(to).Name(), direction)
	case to == PointSocket:
		return fmt.Sprintf("the source's own stack, between %s and the probe socket (%s)", r.point(from).Name(), direction)
	}
	return fmt.Sprintf("between %s and %s (%s)", r.point(from).Name(), r.point(to).Name(), direction)
}

// worstLoss returns the segment with the most losses, the first on a tie,
// counting the source's stack as a segment at each end of the path.
func worstLoss(r *Result) *Loss {
	var l *Loss
	consider := func(c Loss) {
		if c.Lost > 0 && (l == nil || c.Lost > l.Lost) {
			l = &c
		}
	}
	if len(r.Points) == 0 {
		return nil
	}
	first := r.Points[0].ID
	consider(Loss{From: PointSocket, To: first, Direction: DirRequest, Class: ClassEgress, Lost: r.Stack.Request})
	for _, s := range r.Segments {
		consider(Loss{From: s.From, To: s.To, Direction: s.Direction, Class: s.Class, Lost: s.Lost})
	}
	consider(Loss{From: first, To: PointSocket, Direction: DirReply, Class: ClassIngress, Lost: r.Stack.Reply})
	return l
}

func lossText(r *Result, l *Loss) string {
	return fmt.Sprintf("%d of %d probes (%s%%) lost in %s %s; ",
		l.Lost, r.Probes.Sent, percent(float64(l.Lost)/float64(max(r.Probes.Sent, 1))),
		l.Class, spanText(r, l.From, l.To, l.Class, l.Direction))
}

// unknownText counts the probes whose loss could not be located and names
// the captures that dropped packets where they went missing. It blames no
// segment.
func unknownText(r *Result) (int, string) {
	n := 0
	var at []string
	for _, s := range r.Segments {
		if s.Unknown == 0 {
			continue
		}
		n += s.Unknown
		if name := r.point(s.To).Name(); !slices.Contains(at, name) {
			at = append(at, name)
		}
	}
	if r.Stack.Unknown > 0 && len(r.Points) > 0 {
		n += r.Stack.Unknown
		if name := r.Points[0].Name(); !slices.Contains(at, name) {
			at = append(at, name)
		}
	}
	if n == 0 {
		return 0, ""
	}
	probes, they := "probes", "they"
	if n == 1 {
		probes, they = "probe", "it"
	}
	captures := "the captures at " + strings.Join(at, ", ")
	if len(at) == 1 {
		captures = "the capture at " + at[0]
	}
	return n, fmt.Sprintf("%d unanswered %s (%s%%) not located: %s dropped packets where %s went missing; ",
		n, probes, percent(float64(n)/float64(max(r.Probes.Sent, 1))), captures, they)
}

// tunnelled reports whether the path crosses an overlay device: then what
// lies beyond the uplink is another node and its pod, else a host the
// packets reach unencapsulated (host-gw routing, an external host).
func (r *Result) tunnelled() bool {
	for _, p := range r.Points {
		switch topology.Kind(p.Kind) {
		case topology.KindVXLAN, topology.KindGeneve, topology.KindIPIP:
			return true
		}
	}
	return false
}
