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

// verdict attributes the latency to a segment, by its spread or, when f
// (a standing delay, or nil) explains more, by its floor, and leads with
// the worst loss, then what was not located and what cnitrace itself
// missed.
func verdict(r *Result, t *tally, spans []span, f *standing) Verdict {
	v, ok := Verdict{Text: "no probe was observed at any capture point"}, true
	if t.sighted {
		v, ok = byExcess(r, t, spans)
		if !ok {
			v, ok = byMedian(r)
		}
		if !ok {
			v = Verdict{Text: "no segment could be measured on its own"}
		}
		v = withFloor(r, t, v, ok, f)
	}
	v.Text = ownText(r) + v.Text
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

// byExcess compares every complete probe with the fastest one: the segment
// that holds the largest share of the summed extra RTT wins. The sums are
// exact integers, whatever the number of probes.
func byExcess(r *Result, t *tally, spans []span) (Verdict, bool) {
	n := int64(t.complete)
	if n < 2 {
		return Verdict{}, false
	}
	total := float64(t.rttSum - n*int64(t.fastest))
	if total < float64(minExcess)*float64(n) {
		return Verdict{}, false
	}
	best, bestEx := -1, 0.0
	for s, sp := range spans {
		if !sp.separable {
			continue
		}
		if ex := float64(int64(t.spanSums[s]) - n*int64(t.fastestSpans[s])); best < 0 || ex > bestEx {
			best, bestEx = s, ex
		}
	}
	if best < 0 {
		return Verdict{}, false
	}
	share := bestEx / total
	v := segVerdict(r.Segments[best], share, BasisExcess)
	v.Text = fmt.Sprintf("%s%% of the latency above the fastest probe (p50 +%.1f us) is in %s",
		percent(share), micros(t.rtts.rank(50)-t.fastest), where(r, r.Segments[best]))
	return v, true
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
// the start of what was measured, except the turnaround, which is named
// as what lies beyond its point and says where its time was taken from.
func where(r *Result, s Segment) string {
	if s.MergedFrom != "" && s.From == s.To {
		return fmt.Sprintf("%s %s, timed from %s (the RX stamps since were inherited)",
			s.Class, spanText(r, s.From, s.To, s.Class, s.Direction), r.point(s.MergedFrom).Name())
	}
	from := s.From
	if s.MergedFrom != "" {
		from = s.MergedFrom
	}
	return s.Class + " " + spanText(r, from, s.To, s.Class, s.Direction)
}

// spanText names where a segment lies, for prose. The turnaround segment
// (network, peer or node) starts and ends at the last point, so it is named
// as what lies beyond it.
func spanText(r *Result, from, to, class, direction string) string {
	switch {
	case class == ClassNetwork && from == to && !r.tunnelled():
		return fmt.Sprintf("beyond %s (out and back: wire and the remote host)", r.point(from).Name())
	case class == ClassNetwork && from == to:
		return fmt.Sprintf("beyond %s (out and back: wire, remote node, remote pod)", r.point(from).Name())
	case class == ClassPeer && from == to:
		return fmt.Sprintf("beyond %s (out and back: the peer pod on this node)", r.point(from).Name())
	case class == ClassNode && from == to:
		return fmt.Sprintf("beyond %s (out and back: the node's own stack, which answers the probes itself)", r.point(from).Name())
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

// ownText says what is not counted as lost because cnitrace itself missed
// it or the reply came after the probe's timeout; "" when nothing was.
func ownText(r *Result) string {
	text := ""
	if n := r.Probes.Dropped; n > 0 {
		text += fmt.Sprintf("%d unanswered %s (%s%%) not lost but dropped by cnitrace: its probe socket's receive queue was full, or it read the reply after the timeout; ",
			n, plural(n, "probe", "probes"), percent(float64(n)/float64(max(r.Probes.Sent, 1))))
	}
	if n := r.Probes.Late; n > 0 {
		text += fmt.Sprintf("%d %s (%s%%) answered after the timeout: late, not lost; ",
			n, plural(n, "probe", "probes"), percent(float64(n)/float64(max(r.Probes.Sent, 1))))
	}
	return text
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
