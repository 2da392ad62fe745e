package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cnitrace/cnitrace/probe"
)

// writeRTT writes the round trips, the clocks they were measured with and
// the fallbacks to user-space times. A line that would repeat the one
// above it is left out.
func writeRTT(b *strings.Builder, r *Result) {
	if r.RTT == nil {
		b.WriteString("rtt: no probe was answered\n")
		return
	}
	c := r.RTTClocks
	if c == nil {
		c = &Clocks{}
	}
	send, recv, also := "kernel send stamp", "the receive stamp on the source interface", ""
	if r.RTTSource == RTTUser {
		recv = "the read of the reply"
	}
	// No kernel send stamp (or no clocks, as before they were counted):
	// rtt_us is rtt_ping_us.
	ping := c.Send[probe.ClockUser] == total(c.Send)
	if ping {
		send, also = "send call", ", as ping measures"
	}
	if len(r.RTTNotes) > 0 {
		also += "; user-space fallbacks below"
	}
	writeDist(b, "rtt: ", r.RTT, "("+send+" to "+recv+also+")")
	if !ping {
		writeDist(b, "     ", r.PingRTT, "as ping measures (send call to "+recv+")")
	}
	writeDist(b, "     ", r.PathRTT, "on the path (source interface out to source interface in)")
	if r.RTTSource != RTTUser {
		writeDist(b, "     ", r.UserRTT, "at the probe socket (user-space times at both ends)")
	}
	if r.RTTClocks != nil {
		fmt.Fprintf(b, "clocks: send %s; receive %s\n", clockCounts(c.Send), clockCounts(c.Receive))
	}
	for _, n := range r.RTTNotes {
		b.WriteString("  " + n.String() + "\n")
	}
}

// clockOrder is the order clocks are listed in; others follow by name.
var clockOrder = []string{probe.ClockSched, probe.ClockSoftware, RTTCapture, probe.ClockUser}

// clockCounts lists clocks with their counts: "kernel-sched 27, user 1".
func clockCounts(m map[string]int) string {
	names := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(orderOf(a), orderOf(b))
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, m[n]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func orderOf(clock string) int {
	if i := slices.Index(clockOrder, clock); i >= 0 {
		return i
	}
	return len(clockOrder)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// writeDist writes one distribution line; nothing when d is nil.
func writeDist(b *strings.Builder, lead string, d *Dist, label string) {
	if d != nil {
		fmt.Fprintf(b, "%sp50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us %s\n", lead, d.P50, d.P90, d.P99, d.Max, label)
	}
}

// writeBaseline writes the comparison with the node's own path; nothing
// without a baseline run.
func writeBaseline(b *strings.Builder, r *Result) {
	bl := r.Baseline
	if bl == nil {
		return
	}
	end := "the read of the reply"
	if bl.Clock == BaselineCapture {
		end = fmt.Sprintf("the capture of the reply (pod path at %s, node path at %s)", r.segmentName(bl.PodAt), r.segmentName(bl.NodeAt))
	}
	fmt.Fprintf(b, "baseline: the same probes from the node's netns %s, interleaved; both round trips from the kernel send stamp to %s\n", bl.NetNS, end)
	writeDist(b, "  ", bl.Pod, "pod path")
	writeDist(b, "  ", bl.Node, fmt.Sprintf("node path (%d of %d answered)", bl.Received, bl.Sent))
	o := bl.Overhead
	if o == nil {
		b.WriteString("  overhead: not measured: a path had no measured probe\n")
	} else {
		fmt.Fprintf(b, "  overhead: p50 %.1f us (pod p50 - node p50)", o.P50)
		if o.Pairs != nil {
			fmt.Fprintf(b, "; per pair p10 %.1f us, p50 %.1f us, p90 %.1f us", o.Pairs.P10, o.Pairs.P50, o.Pairs.P90)
		}
		fmt.Fprintf(b, " over %d %s measured on both paths\n", bl.Pairs, plural(bl.Pairs, "pair", "pairs"))
	}
	for _, n := range bl.Notes {
		b.WriteString("  " + n.String() + "\n")
	}
}
