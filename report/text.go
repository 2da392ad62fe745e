package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cnitrace/cnitrace/topology"
)

// barWidth is the length of the bar of the segment with the largest p50.
const barWidth = 30

// renderText writes the report for a terminal: ASCII only, aligned columns,
// nothing that relies on colour.
func renderText(w io.Writer, r *Result) error {
	var b strings.Builder
	if r.Incomplete {
		b.WriteString("INCOMPLETE: " + incompleteText + "\n")
	}
	writeHeader(&b, r)
	writePoints(&b, r)
	b.WriteString("\n")
	writeSegments(&b, r)
	fmt.Fprintf(&b, "\nverdict: %s\n", r.Verdict.Text)
	if _, err := io.WriteString(w, ascii(b.String())); err != nil {
		return fmt.Errorf("render report as text: %w", err)
	}
	return nil
}

func writeHeader(b *strings.Builder, r *Result) {
	b.WriteString("cnitrace: " + headline(r) + "\n")
	for _, s := range probingTexts(r) {
		b.WriteString(s + "\n")
	}
	if s := exactText(r); s != "" {
		b.WriteString("exact: " + s + "\n")
	}
	if s := socketText(r); s != "" {
		b.WriteString("probe socket: " + s + "\n")
	}
	writeRTT(b, r)
	writeBaseline(b, r)
	if s := ignoredText(r); s != "" {
		b.WriteString("ignored: " + s + "\n")
	}
}

// ignoredText says how many observations were not used; "" when none.
func ignoredText(r *Result) string {
	if r.Probes.Ignored == 0 {
		return ""
	}
	return fmt.Sprintf("%d observations of other runs or foreign packets", r.Probes.Ignored)
}

// podName names the source's pod as the header shows it: "pod
// default/web (sandbox 8d41e7c0a9f3b)", the id shortened as crictl does;
// "hostNetwork pod ..." when it shares the node's netns.
func podName(s Source) string {
	name := "pod " + s.Pod
	if s.HostNetwork {
		name = "hostNetwork " + name
	}
	if id := s.SandboxID; id != "" {
		name += " (sandbox " + id[:min(len(id), 13)] + ")"
	}
	return name
}

// notLost completes the header with the unanswered probes that are not
// lost: late ones, and those cnitrace dropped itself.
func notLost(c ProbeCounts) string {
	s := ""
	for _, t := range notLostTexts(c) {
		s += ", " + t
	}
	return s
}

// notLostTexts names the unanswered probes that are not lost, one phrase
// each: "1 late (answered after the timeout)", "2 dropped by cnitrace (not
// the path)".
func notLostTexts(c ProbeCounts) []string {
	var s []string
	if c.Late > 0 {
		s = append(s, fmt.Sprintf("%d late (answered after the timeout)", c.Late))
	}
	if c.Dropped > 0 {
		s = append(s, fmt.Sprintf("%d dropped by cnitrace (not the path)", c.Dropped))
	}
	return s
}

// exactText says which figures are approximate; "" when none is.
func exactText(r *Result) string {
	if r.ExactProbes == 0 {
		return ""
	}
	return fmt.Sprintf("the first %d of the %d probes are kept whole; percentiles over all of them are within %.1f%% (sketches), counts and maxima exact",
		r.ExactProbes, r.Probes.Sent, 100*SketchError)
}

// socketText says what cnitrace's own probe socket missed; "" when it
// missed nothing.
func socketText(r *Result) string {
	s := r.Socket
	if s == nil {
		return ""
	}
	t := fmt.Sprintf("cnitrace's own socket dropped %d packets (its receive queue was full) and read %d replies after their timeout",
		s.Drops, s.LateReplies)
	if n := r.Probes.Dropped; n > 0 && len(r.Points) > 0 {
		t += fmt.Sprintf("; %d %s whose reply reached %s count as dropped by cnitrace, not lost", n, plural(n, "probe", "probes"), r.Points[0].Name())
	}
	return t
}

// writePoints lists the points and what their captures may have missed.
func writePoints(b *strings.Builder, r *Result) {
	b.WriteString("\npoints:\n")
	pts := table{right: []bool{false, false, false, false}}
	for _, p := range r.Points {
		row := []string{p.ID, p.Name(), p.Kind}
		if len(r.Rewrites) > 0 && p.Request != nil { // where NAT acted, show what it changed
			row = append(row, "request "+p.Request.Src+" > "+p.Request.Dst)
		}
		pts.add(row...)
	}
	pts.write(b, "  ")
	for _, s := range rewriteTexts(r) {
		b.WriteString("  " + s + "\n")
	}
	for _, s := range captureTexts(r) {
		b.WriteString("  " + s + "\n")
	}
}

// captureTexts says, point by point, what the captures may have missed:
// "p3 flannel.1: the capture dropped ...".
func captureTexts(r *Result) []string {
	var s []string
	for _, p := range r.Points {
		c := p.Capture
		if p.Dropped() {
			s = append(s, fmt.Sprintf("%s %s: the capture dropped %d of %d packets (ring frozen %d times): unanswered probes missing here count as unknown, not lost",
				p.ID, p.Interface, c.Drops, c.Packets, c.Freezes))
		}
		if c != nil && c.Undecodable > 0 {
			s = append(s, fmt.Sprintf("%s %s: the capture could not decode %d packets", p.ID, p.Interface, c.Undecodable))
		}
	}
	return s
}

// writeSegments writes the segment table and explains its markers.
func writeSegments(b *strings.Builder, r *Result) {
	cols := segmentColumns(r.Segments)
	top := 0.0
	for _, s := range r.Segments {
		if s.US != nil {
			top = max(top, s.US.P50)
		}
	}
	end := len(r.Segments) // segments from end on are non-separable with nothing after them
	for end > 0 && !r.Segments[end-1].Separable {
		end--
	}
	var merged []string
	for i, s := range r.Segments {
		cols.add(r, s, remark(s, top, i >= end))
		if s.MergedFrom != "" {
			merged = append(merged, "* "+r.mergedText(s))
		}
	}
	cols.write(b, "  ")
	for _, n := range merged {
		b.WriteString("  " + n + "\n")
	}
	writeLegend(b, r.Segments)
	if s := stackLossText(r); s != "" {
		b.WriteString("  source stack: " + s + "\n")
	}
}

// mergedText says what a merged segment is timed from.
func (r *Result) mergedText(s Segment) string {
	return fmt.Sprintf("%s -> %s is timed from %s: it includes the segments since %s, whose RX stamps were inherited from the previous device",
		s.From, s.To, r.segmentName(s.MergedFrom), s.MergedFrom)
}

// stackLossText says how many probes the source's own stack lost, outside
// the capture points; "" when it lost none.
func stackLossText(r *Result) string {
	s := r.Stack
	if s == (StackLoss{}) || len(r.Points) == 0 {
		return ""
	}
	first := r.segmentName(r.Points[0].ID)
	refused := ""
	if s.Refused > 0 {
		refused = fmt.Sprintf(": %d refused by the kernel at send (%s)", s.Refused, s.RefusedError)
	}
	t := fmt.Sprintf("%d requests lost between the probe socket and %s (send path%s), %d replies between %s and the probe socket (receive path)",
		s.Request, first, refused, s.Reply, first)
	if s.Unknown > 0 {
		t += fmt.Sprintf(", %d not located (the capture at %s dropped packets)", s.Unknown, first)
	}
	return t
}

// segmentTable is the segment table; the unknown and notes columns are
// there only when some segment needs them.
type segmentTable struct {
	table
	unknown, noted bool
}

func segmentColumns(segs []Segment) *segmentTable {
	t := &segmentTable{
		table:   table{right: []bool{false, false, false, true, true, true, true, true, true}},
		unknown: slices.ContainsFunc(segs, func(s Segment) bool { return s.Unknown > 0 }),
		noted:   slices.ContainsFunc(segs, func(s Segment) bool { return len(s.Notes) > 0 }),
	}
	head := []string{"dir", "class", "segment", "p50 us", "p90 us", "p99 us", "max us", "seen", "lost"}
	if t.unknown {
		t.right, head = append(t.right, true), append(head, "unknown")
	}
	if t.noted {
		t.right, head = append(t.right, false), append(head, "notes")
	}
	t.right = append(t.right, false)
	t.table.add(append(head, "")...)
	return t
}

// add appends the row of segment s, ending with remark.
func (t *segmentTable) add(r *Result, s Segment, remark string) {
	name := r.segmentLabel(s)
	if s.MergedFrom != "" {
		name += " *"
	}
	row := append([]string{s.Direction, s.Class, name}, numbers(s)...)
	row = append(row, strconv.Itoa(s.Seen), strconv.Itoa(s.Lost))
	if t.unknown {
		row = append(row, strconv.Itoa(s.Unknown))
	}
	if t.noted {
		row = append(row, marks(s.Notes))
	}
	t.table.add(append(row, remark)...)
}

// segmentLabel names a segment by its ends' IDs and interfaces, as the
// segment tables show it: "p0 eth0 -> p1 veth3f2a9c1d", and the turnaround
// "p4 eth0 tx -> rx".
func (r *Result) segmentLabel(s Segment) string {
	if s.From == s.To { // the turnaround: out of the last point and back into it
		return r.segmentName(s.From) + " " + turnDirs(r.point(s.From))
	}
	return r.segmentName(s.From) + " -> " + r.segmentName(s.To)
}

// turnDirs says how the turnaround crosses its point: "tx -> rx" when the
// requests leave by it (an uplink, a peer's veth), "rx -> tx" when they end
// there (the node answering itself).
func turnDirs(p Point) string {
	if p.RequestDir == string(topology.RX) {
		return "rx -> tx"
	}
	return "tx -> rx"
}

// noteMarks are the letters the notes column shows per kind of note, in
// the order they are shown.
var noteMarks = []struct {
	kind         NoteKind
	mark, legend string
}{
	{NoteNotSeparable, "i", "not separable (inherited RX stamp)"},
	{NoteFewSamples, "n", "under 10 samples (p90, p99 = max)"},
	{NoteCaptureDrops, "d", "capture dropped packets at an end"},
	{NoteClockOffset, "c", "one-way across two clocks: within the offset bound"},
}

// otherMark is the letter of the kinds noteMarks does not list.
const otherMark = "o"

// marks returns one letter per kind of note, otherMark for other kinds.
func marks(notes []Note) string {
	var m strings.Builder
	for _, k := range noteMarks {
		if slices.ContainsFunc(notes, func(n Note) bool { return n.Kind == k.kind }) {
			m.WriteString(k.mark)
		}
	}
	if slices.ContainsFunc(notes, func(n Note) bool { return !knownKind(n.Kind) }) {
		m.WriteString(otherMark)
	}
	return m.String()
}

// knownKind reports whether noteMarks has a letter for k.
func knownKind(k NoteKind) bool {
	for _, nm := range noteMarks {
		if nm.kind == k {
			return true
		}
	}
	return false
}

// writeLegend explains the letters used in the notes column.
func writeLegend(b *strings.Builder, segs []Segment) {
	used := ""
	for _, s := range segs {
		used += marks(s.Notes)
	}
	var parts []string
	for _, k := range noteMarks {
		if strings.Contains(used, k.mark) {
			parts = append(parts, k.mark+" "+k.legend)
		}
	}
	if strings.Contains(used, otherMark) {
		parts = append(parts, "o other (see the JSON notes)")
	}
	if len(parts) > 0 {
		b.WriteString("  notes: " + strings.Join(parts, "; ") + "\n")
	}
}

func (r *Result) segmentName(id string) string {
	return id + " " + r.point(id).Interface
}

// numbers are the p50, p90, p99 and max cells of a segment.
func numbers(s Segment) []string {
	if s.US == nil {
		return []string{"-", "-", "-", "-"}
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
	return []string{f(s.US.P50), f(s.US.P90), f(s.US.P99), f(s.US.Max)}
}

// remark is the last column: a bar proportional to p50, or why there is none.
func remark(s Segment, top float64, atEnd bool) string {
	switch {
	case !s.Separable && atEnd:
		return "(not separable: end of the path, not measured)"
	case !s.Separable:
		return "(not separable: merged into next)"
	case s.US == nil:
		return "(no samples)"
	case top <= 0 || s.US.P50 <= 0:
		return ""
	}
	n := int(math.Round(s.US.P50 / top * barWidth))
	return strings.Repeat("#", min(max(n, 1), barWidth))
}

// rewriteTexts says where NAT changed the probes' addresses, and the
// Service translation discovery followed, one sentence each.
func rewriteTexts(r *Result) []string {
	var s []string
	if r.Translated != "" {
		s = append(s, fmt.Sprintf("%s is translated to %s by the node (DNAT, found in its conntrack table)", r.Target, r.Translated))
	}
	for _, w := range r.Rewrites {
		s = append(s, fmt.Sprintf("NAT: %s %s %s -> %s between %s and %s",
			w.Direction, w.Field, w.Old, w.New, r.segmentName(w.From), r.segmentName(w.To)))
	}
	return s
}
