package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The charts are drawn in SVG on an axis 1000 units wide (htmlAxisWidth),
// stretched to the width of their column; their labels are HTML, so they
// keep their size when the page is printed narrower.
const htmlAxisWidth = 1000

// htmlAxis is the scale of a chart: 0 to Top microseconds, ticks at each
// quarter.
type htmlAxis struct {
	Ticks []string // labels at 0, 1/4, 1/2 and 3/4 of the axis
	End   string   // the label at its end
	top   float64
}

// htmlAxisOf returns an axis from 0 to a round value at or above top, so that
// its quarters are round too.
func htmlAxisOf(top float64) htmlAxis {
	step := htmlNiceCeil(max(top, 0.1) / 4)
	a := htmlAxis{top: 4 * step}
	for k := range 4 {
		a.Ticks = append(a.Ticks, htmlUS(float64(k)*step))
	}
	a.End = htmlUS(a.top)
	return a
}

// htmlNiceCeil returns the smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8
// times a power of ten at or above x > 0.
func htmlNiceCeil(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v := m * p; v >= x*(1-1e-9) {
			return v
		}
	}
	return 10 * p
}

func htmlUS(v float64) string { return strconv.FormatFloat(round(v, 100), 'f', -1, 64) }

// x places v on the axis, clamped to it, rounded to 0.1 unit.
func (a htmlAxis) x(v float64) float64 {
	return round(min(max(v/a.top*htmlAxisWidth, 0), htmlAxisWidth), 10)
}

// htmlWaterfall is the typical probe drawn step by step: one bar per
// segment, from where the probe was at the segment's start to its end.
type htmlWaterfall struct {
	Seq     uint32
	Total   string
	Axis    htmlAxis
	Rows    []htmlBar
	Merged  []string // what merged bars include
	Missing string   // why there is no waterfall; "" when there is one
}

// htmlBar is one segment of the typical probe.
type htmlBar struct {
	Key, Direction, Class, Hook, Label string
	Bar                                bool    // false: not separable, its time is in a merged bar
	X, W                               float64 // on the axis
	At, Took                           string
	Merged                             bool // the bar spans non-separable segments before it
	Remark                             string
	Lost, Unknown                      int
}

// htmlWaterfallOf draws r's typical probe over r's segments; Missing says why
// not when there is none, or when it does not fit the segments (a report
// edited by hand).
func htmlWaterfallOf(r *Result) htmlWaterfall {
	tp := r.Typical
	switch {
	case tp == nil:
		return htmlWaterfall{Missing: "no probe was seen at every point, so there is no typical probe to draw"}
	case !typicalFits(tp, r.Segments):
		return htmlWaterfall{Missing: "the typical probe's steps do not match the segments of this report"}
	}
	total := tp.Steps[len(tp.Steps)-1].OffsetUS
	w := htmlWaterfall{Seq: tp.Seq, Total: fmt.Sprintf("%.1f us", total), Axis: htmlAxisOf(total)}
	end := htmlTrailing(r.Segments)
	for i, s := range r.Segments {
		w.Rows = append(w.Rows, htmlBarOf(r, w.Axis, i, i >= end))
		if s.MergedFrom != "" {
			w.Merged = append(w.Merged, r.mergedText(s))
		}
	}
	return w
}

// typicalFits reports whether tp has a step at each end of every segment.
func typicalFits(tp *TypicalProbe, segs []Segment) bool {
	if len(segs) == 0 || len(tp.Steps) != len(segs)+1 {
		return false
	}
	for i, s := range segs {
		if tp.Steps[i].Point != s.From || tp.Steps[i+1].Point != s.To {
			return false
		}
	}
	return true
}

// htmlBarOf draws segment i of the typical probe. A separable segment after
// non-separable ones spans them all, as its figures do (merged_from); a
// non-separable one has no bar of its own.
func htmlBarOf(r *Result, a htmlAxis, i int, atEnd bool) htmlBar {
	s, steps := r.Segments[i], r.Typical.Steps
	b := htmlBar{Key: htmlSegmentKey(s), Direction: s.Direction, Class: s.Class, Hook: htmlClassHook(s.Class), Label: r.segmentLabel(s),
		Lost: s.Lost, Unknown: s.Unknown}
	if !s.Separable {
		b.Remark = strings.Trim(remark(s, 0, atEnd), "()")
		if steps[i+1].Inherited {
			b.Remark += "; this probe's stamp at " + s.To + " was inherited"
		}
		return b
	}
	start := i
	for start > 0 && !r.Segments[start-1].Separable {
		start--
	}
	from, to := steps[start].OffsetUS, steps[i+1].OffsetUS
	x0, x1 := a.x(from), a.x(to)
	b.Bar, b.X, b.W = true, x0, round(max(x1-x0, 2), 10) // at least 2 units, so a short one shows
	b.At, b.Took = fmt.Sprintf("%.1f us", from), fmt.Sprintf("%.1f us", round(to-from, 10))
	if start != i {
		b.Merged = true
		b.Remark = "merged: includes " + r.segmentLabel(r.Segments[start])
		if i-start > 1 {
			b.Remark += " and what follows"
		}
	}
	return b
}

// htmlBox is a distribution on an axis: a whisker from min to max, a box
// from p50 to p90, a mark at p99.
type htmlBox struct {
	Min, P50, P90, P99, Max float64
	BoxW                    float64
}

func htmlBoxOf(a htmlAxis, d *Dist) *htmlBox {
	if d == nil {
		return nil
	}
	b := &htmlBox{Min: a.x(d.Min), P50: a.x(d.P50), P90: a.x(d.P90), P99: a.x(d.P99), Max: a.x(d.Max)}
	b.BoxW = round(max(b.P90-b.P50, 2), 10)
	return b
}

// htmlFigures are a distribution's figures as the tables print them.
type htmlFigures struct {
	P50, P90, P99, Max, Min string
}

func htmlFiguresOf(d *Dist) htmlFigures {
	if d == nil {
		return htmlFigures{"-", "-", "-", "-", "-"}
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
	return htmlFigures{f(d.P50), f(d.P90), f(d.P99), f(d.Max), f(d.Min)}
}

// htmlDists is the segment table with a box per segment, all on one axis.
type htmlDists struct {
	Axis    htmlAxis
	Unknown bool // some segment has unknown losses: show the column
	Rows    []htmlDistSeg
}

// htmlDistSeg is one row of the segment table.
type htmlDistSeg struct {
	Key, Direction, Class, Hook, Label string
	htmlFigures
	Seen, Lost, Unknown int
	Remark              string // why it has no figures, what it is timed from, the kinds of its notes
	Box                 *htmlBox
}

// htmlDistsOf lays out the segment table.
func htmlDistsOf(r *Result) htmlDists {
	top := 0.0
	for _, s := range r.Segments {
		if s.US != nil {
			top = max(top, s.US.Max)
		}
	}
	d := htmlDists{Axis: htmlAxisOf(top)}
	end := htmlTrailing(r.Segments)
	for i, s := range r.Segments {
		row := htmlDistSeg{Key: htmlSegmentKey(s), Direction: s.Direction, Class: s.Class, Hook: htmlClassHook(s.Class), Label: r.segmentLabel(s),
			htmlFigures: htmlFiguresOf(s.US), Seen: s.Seen, Lost: s.Lost, Unknown: s.Unknown, Box: htmlBoxOf(d.Axis, s.US)}
		var sub []string
		if !s.Separable || s.US == nil {
			sub = append(sub, strings.Trim(remark(s, 0, i >= end), "()"))
		} else if s.MergedFrom != "" {
			sub = append(sub, "timed from "+r.segmentName(s.MergedFrom))
		}
		if kinds := htmlNoteKinds(s.Notes, !s.Separable); len(kinds) > 0 {
			sub = append(sub, "notes: "+strings.Join(kinds, ", "))
		}
		row.Remark = strings.Join(sub, "; ")
		d.Unknown = d.Unknown || s.Unknown > 0
		d.Rows = append(d.Rows, row)
	}
	return d
}

// htmlDistRow is a round trip: what it measures, its figures and its box.
type htmlDistRow struct {
	Label string
	htmlFigures
	Box *htmlBox
}

// htmlDistRowsOf lays out distributions on one axis.
func htmlDistRowsOf(rows []distRow) ([]htmlDistRow, htmlAxis) {
	top := 0.0
	for _, row := range rows {
		top = max(top, row.d.Max)
	}
	a := htmlAxisOf(top)
	out := make([]htmlDistRow, 0, len(rows))
	for _, row := range rows {
		out = append(out, htmlDistRow{Label: row.label, htmlFigures: htmlFiguresOf(row.d), Box: htmlBoxOf(a, row.d)})
	}
	return out, a
}

// htmlBaseline is the comparison with the node's own path.
type htmlBaseline struct {
	Text     string
	Rows     []htmlDistRow
	Axis     htmlAxis
	Overhead string
	Notes    []string
}

// htmlBaselineOf lays out r's baseline; nil without one.
func htmlBaselineOf(r *Result) *htmlBaseline {
	bl := r.Baseline
	if bl == nil {
		return nil
	}
	b := &htmlBaseline{Text: baselineText(r), Overhead: overheadText(bl), Notes: htmlNoteStrings(bl.Notes)}
	b.Rows, b.Axis = htmlDistRowsOf(baselineRows(bl))
	return b
}

// htmlNoteKinds names the kinds of notes, which the notes section gives
// in full; a note without a kind is "other". With said, the kind
// NoteNotSeparable is left out: the row says it already.
func htmlNoteKinds(notes []Note, said bool) []string {
	var k []string
	for _, n := range notes {
		switch {
		case said && n.Kind == NoteNotSeparable:
		case n.Kind == "":
			k = append(k, "other")
		default:
			k = append(k, string(n.Kind))
		}
	}
	return k
}
