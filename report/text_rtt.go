package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cnitrace/cnitrace/probe"
)

// noRTT stands for the round trips when no probe was answered.
const noRTT = "no probe was answered"

// writeRTT writes the round trips, the clocks they were measured with and
// the fallbacks to user-space times.
func writeRTT(b *strings.Builder, r *Result) {
	rows := rttRows(r)
	if len(rows) == 0 {
		b.WriteString("rtt: " + noRTT + "\n")
		return
	}
	for i, row := range rows {
		if i == 0 {
			writeDist(b, "rtt: ", row.d, "("+row.label+")")
		} else {
			writeDist(b, "     ", row.d, row.label)
		}
	}
	if s := clocksText(r); s != "" {
		b.WriteString("clocks: " + s + "\n")
	}
	for _, n := range r.RTTNotes {
		b.WriteString("  " + n.String() + "\n")
	}
}

// distRow is a distribution and what it measures, as the renderers list
// round trips.
type distRow struct {
	d     *Dist
	label string
}

// rttRows are the round trips worth showing, rtt_us first: its label says
// which clocks it was measured with (the text report puts it in
// parentheses). A round trip that would repeat the one above it, or was
// not measured, is left out. None when no probe was answered.
func rttRows(r *Result) []distRow {
	if r.RTT == nil {
		return nil
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
	rows := []distRow{{r.RTT, send + " to " + recv + also}}
	if !ping {
		rows = append(rows, distRow{r.PingRTT, "as ping measures (send call to " + recv + ")"})
	}
	rows = append(rows, distRow{r.PathRTT, "on the path (source interface out to source interface in)"})
	if r.RTTSource != RTTUser {
		rows = append(rows, distRow{r.UserRTT, "at the probe socket (user-space times at both ends)"})
	}
	return slices.DeleteFunc(rows, func(row distRow) bool { return row.d == nil })
}

// clocksText counts the clocks of rtt_us: "send kernel-sched 25, user 1;
// receive capture 26"; "" when they were not counted.
func clocksText(r *Result) string {
	c := r.RTTClocks
	if c == nil {
		return ""
	}
	return fmt.Sprintf("send %s; receive %s", clockCounts(c.Send), clockCounts(c.Receive))
}

// clockOrder is the order clocks are listed in; others follow by name.
var clockOrder = []string{probe.ClockSched, RTTCapture, probe.ClockUser}

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
	b.WriteString("baseline: " + baselineText(r) + "\n")
	for _, row := range baselineRows(bl) {
		writeDist(b, "  ", row.d, row.label)
	}
	b.WriteString("  overhead: " + overheadText(bl) + "\n")
	for _, n := range bl.Notes {
		b.WriteString("  " + n.String() + "\n")
	}
}

// baselineText says what the baseline compares, and with which clocks.
func baselineText(r *Result) string {
	bl := r.Baseline
	end := "the read of the reply"
	if bl.Clock == BaselineCapture {
		end = fmt.Sprintf("the capture of the reply (pod path at %s, node path at %s)", r.segmentName(bl.PodAt), r.segmentName(bl.NodeAt))
	}
	return fmt.Sprintf("the same probes from the node's netns %s, interleaved; both round trips from the kernel send stamp to %s", bl.NetNS, end)
}

// baselineRows are the round trips of both paths; those not measured are
// left out.
func baselineRows(bl *Baseline) []distRow {
	rows := []distRow{{bl.Pod, "pod path"}, {bl.Node, fmt.Sprintf("node path (%d of %d answered)", bl.Received, bl.Sent)}}
	return slices.DeleteFunc(rows, func(row distRow) bool { return row.d == nil })
}

// overheadText says how much longer the pod path's round trip is than the
// node's.
func overheadText(bl *Baseline) string {
	o := bl.Overhead
	if o == nil {
		return "not measured: a path had no measured probe"
	}
	s := fmt.Sprintf("p50 %.1f us (pod p50 - node p50)", o.P50)
	if o.Pairs != nil {
		s += fmt.Sprintf("; per pair p10 %.1f us, p50 %.1f us, p90 %.1f us", o.Pairs.P10, o.Pairs.P50, o.Pairs.P90)
	}
	return s + fmt.Sprintf(" over %d %s measured on both paths", bl.Pairs, plural(bl.Pairs, "pair", "pairs"))
}
