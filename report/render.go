package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Format is an output format of Render.
type Format int

// Output formats.
const (
	FormatText Format = iota // aligned ASCII for terminals
	FormatJSON               // the schema_version 1 contract, indented
)

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatJSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the format with the given name, as given to --format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text":
		return FormatText, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("unknown output format %q (want text or json)", s)
}

// Render writes r to w in format f.
func Render(w io.Writer, r *Result, f Format) error {
	if r == nil {
		return errors.New("render report: no result")
	}
	switch f {
	case FormatText:
		return renderText(w, r)
	case FormatJSON:
		return renderJSON(w, r)
	}
	return fmt.Errorf("render report: unknown output format %v", f)
}

func renderJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("render report as json: %w", err)
	}
	return nil
}

// barWidth is the length of the bar of the segment with the largest p50.
const barWidth = 30

// renderText writes the report for a terminal: ASCII only, aligned columns,
// nothing that relies on colour.
func renderText(w io.Writer, r *Result) error {
	var b strings.Builder
	if r.Incomplete {
		b.WriteString("INCOMPLETE: the run stopped early; this report covers only what was recorded until then\n")
	}
	writeHeader(&b, r)
	b.WriteString("\npoints:\n")
	pts := table{right: []bool{false, false, false}}
	for _, p := range r.Points {
		pts.add(p.ID, p.Name(), p.Kind)
	}
	pts.write(&b, "  ")
	b.WriteString("\n")
	writeSegments(&b, r)
	fmt.Fprintf(&b, "\nverdict: %s\n", r.Verdict.Text)
	if _, err := io.WriteString(w, ascii(b.String())); err != nil {
		return fmt.Errorf("render report as text: %w", err)
	}
	return nil
}

func writeHeader(b *strings.Builder, r *Result) {
	from := "unknown source"
	if r.Source.Interface != "" || r.Source.NetNS != "" {
		from = r.Source.Interface + "@" + r.Source.NetNS
	}
	if r.Source.Addr != "" {
		from += " (" + r.Source.Addr + ")"
	}
	target := r.Target
	if target == "" {
		target = "unknown target"
	}
	fmt.Fprintf(b, "cnitrace: %d probes to %s from %s: %d answered, %d lost\n",
		r.Probes.Sent, target, from, r.Probes.Received, r.Probes.Sent-r.Probes.Received)
	if r.RTT == nil {
		b.WriteString("rtt: no probe was answered\n")
	} else {
		fmt.Fprintf(b, "rtt: p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us (%s)\n",
			r.RTT.P50, r.RTT.P90, r.RTT.P99, r.RTT.Max, rttSourceLabel(r.RTTSource))
	}
	if p := r.PathRTT; p != nil {
		fmt.Fprintf(b, "     p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us on the path (pod interface out to pod interface in)\n",
			p.P50, p.P90, p.P99, p.Max)
	}
	if u := r.UserRTT; u != nil && r.RTTSource != RTTUser {
		fmt.Fprintf(b, "     p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us at the probe socket (user-space times at both ends)\n",
			u.P50, u.P90, u.P99, u.Max)
	}
	if r.Probes.Ignored > 0 {
		fmt.Fprintf(b, "ignored: %d observations of other runs or foreign packets\n", r.Probes.Ignored)
	}
}

func rttSourceLabel(s string) string {
	switch s {
	case RTTCapture:
		return "send call to the receive stamp on the pod's interface, as ping measures"
	case RTTUser:
		return "from user-space send and receive times"
	case RTTMixed:
		return "as ping measures; user-space receive times where the pod's interface missed a reply"
	}
	return "source " + s
}

// writeSegments writes the segment table and explains its markers.
func writeSegments(b *strings.Builder, r *Result) {
	t := table{right: []bool{false, false, false, true, true, true, true, true, true, false}}
	t.add("dir", "class", "segment", "p50 us", "p90 us", "p99 us", "max us", "seen", "lost", "")
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
	var notes []string
	for i, s := range r.Segments {
		name := r.segmentName(s.From) + " -> " + r.segmentName(s.To)
		if s.From == s.To { // the network segment: out of and back into the uplink
			name = r.segmentName(s.From) + " tx -> rx"
		}
		if s.MergedFrom != "" {
			name += " *"
			notes = append(notes, fmt.Sprintf("* %s -> %s is timed from %s: it includes the segments since %s, whose RX stamps were inherited from the previous device",
				s.From, s.To, r.segmentName(s.MergedFrom), s.MergedFrom))
		}
		row := []string{s.Direction, s.Class, name}
		row = append(row, numbers(s)...)
		row = append(row, strconv.Itoa(s.Seen), strconv.Itoa(s.Lost), remark(s, top, i >= end))
		t.add(row...)
	}
	t.write(b, "  ")
	for _, n := range notes {
		b.WriteString("  " + n + "\n")
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

// table aligns columns; the last column is never padded.
type table struct {
	right []bool // right-align column i
	rows  [][]string
}

// add appends a row, made ASCII first so that widths are counted right.
func (t *table) add(cells ...string) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = ascii(c)
	}
	t.rows = append(t.rows, row)
}

func (t *table) write(b *strings.Builder, indent string) {
	widths := make([]int, len(t.right))
	for _, row := range t.rows {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], len(c))
			}
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		line.WriteString(indent)
		for i, c := range row {
			pad := ""
			if i < len(row)-1 && i < len(widths) {
				pad = strings.Repeat(" ", widths[i]-len(c))
			}
			if i > 0 {
				line.WriteString("  ")
			}
			if i < len(t.right) && t.right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// ascii replaces everything but printable ASCII and newlines with '?', so
// interface names cannot carry terminal escapes into the report.
func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || (r >= 0x20 && r <= 0x7e) {
			return r
		}
		return '?'
	}, s)
}
