package report

import (
	"fmt"
	"strings"
)

// mergeTexts are the lines a merged report adds after the probing lines,
// in every format: the nodes, the probes matched, the wire's round trip
// and its two halves with the clock offset's bound, which way is slower,
// the runs dropped and the disagreements. None for a one-node report.
func mergeTexts(r *Result) []string {
	m := r.Merge
	if m == nil {
		return nil
	}
	var nodes []string
	for _, n := range m.Nodes {
		s := n.ID + " = " + orUnknown(n.Node) + " (" + n.Role
		if n.Pod != "" {
			s += ", pod " + n.Pod
		}
		nodes = append(nodes, s+")")
	}
	out := []string{
		fmt.Sprintf("nodes: %s; run %s: %d of its probes seen on both nodes, %d on the source node only",
			strings.Join(nodes, ", "), m.RunID, m.Matched, m.Probes-m.Matched),
	}
	if t := targetsText(r); t != "" {
		out = append(out, t)
	}
	if m.OutsideWindow > 0 {
		out = append(out, fmt.Sprintf("outside the listener's capture: %d %s sent while it was not listening, left out", m.OutsideWindow, plural(m.OutsideWindow, "probe", "probes")))
	}
	if d := m.WireRTT; d != nil {
		out = append(out, fmt.Sprintf("wire round trip: %s (source uplink out and back, minus the target uplink's in and out: no clock agreement needed)", distText(d)))
	}
	out = append(out, clockText(m))
	if m.Request != nil && m.Reply != nil && m.Clock != nil { // a clock, for a file made by hand
		out = append(out, fmt.Sprintf("wire request: %s; wire reply: %s; each probe's within +/-%.1f us", distText(m.Request), distText(m.Reply), m.Clock.BoundUS))
	}
	out = append(out, "directions: "+m.Directions)
	for _, d := range m.Dropped {
		out = append(out, fmt.Sprintf("dropped: run %s of node %s (%d %s): %s", d.RunID, d.Node, d.Probes, plural(d.Probes, "probe", "probes"), d.Why))
	}
	for _, d := range m.Disagreements {
		out = append(out, fmt.Sprintf("disagreement: %d %s %s (sequences %s); not counted as lost", d.Probes, plural(d.Probes, "probe", "probes"), d.Kind, seqList(d)))
	}
	return out
}

// clockText says what the clock offset was estimated as.
func clockText(m *Merged) string {
	c := m.Clock
	if c == nil || c.Error != "" {
		why := "no probe was seen at both uplinks"
		if c != nil {
			why = c.Error
		}
		return "clock offset: not estimated: " + why
	}
	drift := "no drift fitted (a run under 2 s)"
	if c.DriftFitted {
		drift = fmt.Sprintf("drift %+.2f ppm", c.DriftPPM)
	}
	return fmt.Sprintf("clock offset: target minus source %+.1f us at the first probe, %s, bound +/-%.1f us, from %d %s",
		c.OffsetUS, drift, c.BoundUS, c.Samples, plural(c.Samples, "probe", "probes"))
}

func distText(d *Dist) string {
	return fmt.Sprintf("p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us", d.P50, d.P90, d.P99, d.Max)
}

func seqList(d Disagreement) string {
	var s []string
	for _, q := range d.Seqs {
		s = append(s, fmt.Sprint(q))
	}
	if d.Probes > len(d.Seqs) {
		s = append(s, "...")
	}
	return strings.Join(s, ", ")
}

// targetsText says, for one of several reports (a Service's backends),
// which share of the run it holds and where the others are.
func targetsText(r *Result) string {
	m := r.Merge
	if len(m.Targets) < 2 {
		return ""
	}
	var this string
	var others []string
	for _, t := range m.Targets {
		if t.Node == targetID(m) {
			this = fmt.Sprintf("the %d %s of the run's %d that went to %s (pod %s)", t.Probes, plural(t.Probes, "probe", "probes"), r.Probes.Sent, t.Node, t.Pod)
			continue
		}
		others = append(others, fmt.Sprintf("%s (pod %s) got %d", t.Node, t.Pod, t.Probes))
	}
	if this == "" { // a file not of merge's making: no target node, or not among the targets
		this = "a share of the run none of the targets is named for"
	}
	return fmt.Sprintf("targets: this report holds %s; %s, in %s; the probe counts and rtt lines are the whole run's",
		this, strings.Join(others, ", "), plural(len(others), "its own report", "their own reports"))
}

// targetID is the node ID of m's target (Nodes[1]), or "" when m names
// none: a file edited by hand or cut short.
func targetID(m *Merged) string {
	if len(m.Nodes) < 2 {
		return ""
	}
	return m.Nodes[1].ID
}
