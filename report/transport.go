package report

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cnitrace/cnitrace/probe"
)

// What a TCP or UDP probe's figures measure besides the path
// (Result.Measures).
const (
	MeasuresTCP = "a TCP SYN probe's round trip is the path's round trip plus the target kernel's SYN handling, " +
		"not the application's accept time, and not a connect() timing, which folds a retransmitted SYN into 1 s"
	MeasuresDNS = "a DNS probe's round trip includes the DNS server's own time to answer, in its user space"
	MeasuresUDP = "a UDP probe's round trip includes the time the program that echoes it takes, in its user space"
	// MeasuresUnreachable is added when a UDP probe was answered by an
	// ICMP port unreachable.
	MeasuresUnreachable = "ICMP rate limiting: the target sends at most ~6 unreachables, then 1/s, per source " +
		"(net.ipv4.icmp_ratelimit), so losses to a closed UDP port may be the target's rate limit, not the path's"
	// MeasuresOneFlow is added when a UDP run went through a DNAT: its
	// probes share one socket, so one conntrack entry sends them all to the
	// backend it chose first.
	MeasuresOneFlow = "one UDP flow: every probe of the run leaves one socket, so the DNAT's conntrack entry sends them all to one backend, " +
		"as it does any long-lived client's socket; another run (another source port) may reach another backend"
)

// transport fills in what the traced source's protocol adds to r: the
// protocol and port, what answered the probes (replies, by kind), what the
// figures measure, the backends a DNAT sent the probes to, and, for an ICMP
// run that lost every probe, that Services do not carry ICMP.
func transport(r *Result, src ProbeSource, replies [probe.Unreachable + 1]int, steps []step, book []stepAddrs) {
	r.Backends = backends(steps, book)
	if src.Proto == probe.ICMP {
		if r.Probes.Sent > 0 && r.Probes.Received == 0 && r.Translated == "" && r.Backends == nil {
			r.Verdict.Text += "; " + serviceICMPHint(r.Target)
		}
		return
	}
	r.Proto, r.Port = src.Proto.String(), src.Port
	for k, n := range replies {
		if n > 0 && probe.Reply(k) != probe.NoReply {
			if r.Replies == nil {
				r.Replies = map[string]int{}
			}
			r.Replies[probe.Reply(k).String()] = n
		}
	}
	switch {
	case src.Proto == probe.TCP:
		r.Measures = append(r.Measures, MeasuresTCP)
	case src.Port == 53:
		r.Measures = append(r.Measures, MeasuresDNS)
	default:
		r.Measures = append(r.Measures, MeasuresUDP)
	}
	if src.Proto == probe.UDP && replies[probe.Unreachable] > 0 {
		r.Measures = append(r.Measures, MeasuresUnreachable)
	}
	if src.Proto == probe.UDP && r.Backends != nil {
		r.Measures = append(r.Measures, MeasuresOneFlow)
	}
}

// serviceICMPHint is what an ICMP run that lost every probe adds to the
// verdict: kube-proxy translates TCP, UDP and SCTP only, so ICMP to a
// ClusterIP goes nowhere, and nothing in the node's state tells a
// Service address from any other before a TCP or UDP packet was sent.
func serviceICMPHint(target string) string {
	if target == "" {
		target = "the target"
	}
	return "if " + target + " is a Service address, Services do not carry ICMP: trace with --proto tcp --port PORT or --proto udp --port PORT"
}

// backends are the destinations the probes carried at the first request
// step whose destinations are not the first step's: the first point after
// a DNAT. Nil when no request step saw another destination.
func backends(steps []step, book []stepAddrs) *Backends {
	first := -1
	for i, st := range steps {
		if st.reply || i >= len(book) || len(book[i].dsts) == 0 {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		if translated(book[first], book[i]) {
			return backendsAt(st, book[i])
		}
	}
	return nil
}

// translated reports whether step b saw a destination address step a
// never did.
func translated(a, b stepAddrs) bool {
	for d := range b.dsts {
		if !slices.ContainsFunc(keys(a.dsts), func(x netip.AddrPort) bool { return x.Addr() == d.Addr() }) {
			return true
		}
	}
	return false
}

func keys(m map[netip.AddrPort]int) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func backendsAt(st step, s stepAddrs) *Backends {
	b := &Backends{At: st.point.ID, Other: s.dstOthers}
	ds := keys(s.dsts)
	slices.SortFunc(ds, func(x, y netip.AddrPort) int { return x.Compare(y) })
	for _, d := range ds {
		b.Seen = append(b.Seen, Backend{Addr: d.Addr().String(), Port: int(d.Port()), Probes: s.dsts[d]})
	}
	return b
}

// probingTexts are the lines a TCP or UDP run adds to the report's head,
// and the backends line of a run through a DNAT: "tcp to port 8080,
// answered by 28 syn-ack, 2 rst", what the figures measure, "backends
// after the DNAT, at p2 (cni0@net:[...]): 10.244.2.2:8080 16 probes, ...".
// None for an ICMP run without a DNAT.
func probingTexts(r *Result) []string {
	var out []string
	if r.Proto != "" {
		s := fmt.Sprintf("probes: %s to port %d", r.Proto, r.Port)
		if t := repliesText(r.Replies); t != "" {
			s += ", answered by " + t
		}
		out = append(out, s)
		for _, m := range r.Measures {
			out = append(out, "measures: "+m)
		}
	}
	if b := r.Backends; b != nil {
		var seen []string
		for _, x := range b.Seen {
			a := x.Addr
			if x.Port != 0 {
				a = netip.AddrPortFrom(netip.MustParseAddr(x.Addr), uint16(x.Port)).String()
			}
			seen = append(seen, fmt.Sprintf("%s %d %s", a, x.Probes, plural(x.Probes, "probe", "probes")))
		}
		if b.Other > 0 {
			seen = append(seen, fmt.Sprintf("others %d %s", b.Other, plural(b.Other, "probe", "probes")))
		}
		out = append(out, fmt.Sprintf("backends: after the DNAT, at %s (%s): %s", b.At, r.point(b.At).Name(), strings.Join(seen, ", ")))
	}
	return append(out, mergeTexts(r)...)
}

// repliesText lists the replies by kind, in probe.Reply's order.
func repliesText(m map[string]int) string {
	var s []string
	for k := probe.EchoReply; k <= probe.Unreachable; k++ {
		if n := m[k.String()]; n > 0 {
			s = append(s, fmt.Sprintf("%d %s", n, k))
		}
	}
	for k, n := range m { // kinds a later cnitrace may add, as they are
		if _, err := replyKind(k); err != nil {
			s = append(s, fmt.Sprintf("%d %s", n, k))
		}
	}
	slices.Sort(s[min(len(s), knownKinds(m)):])
	return strings.Join(s, ", ")
}

func replyKind(s string) (probe.Reply, error) {
	for k := probe.NoReply; k <= probe.Unreachable; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown reply %q", s)
}

func knownKinds(m map[string]int) int {
	n := 0
	for k, c := range m {
		if _, err := replyKind(k); err == nil && c > 0 && k != probe.NoReply.String() {
			n++
		}
	}
	return n
}
