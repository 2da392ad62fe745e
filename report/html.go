package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"sync"
	"time"
)

// The HTML report is one self-contained page: inline CSS and SVG, no
// script, no font, image or stylesheet fetched, and a Content-Security-
// Policy that forbids fetching any. Every string of the Result goes
// through html/template, which escapes it for where it lands. Colour never
// carries meaning alone: each bar has its label, direction and class in
// text, merged spans are hatched, losses are marked in words. Elements the
// tests look for carry stable hooks: id="verdict", data-point="p0" on every
// point, data-segment="p0-p1-request" (segmentKey) on every segment.
//
// The views below hold what the template lays out, figures formatted and
// geometry computed, so the template only places them.

//go:embed html.tmpl
var htmlSource string

// htmlTemplates parses the page's templates at the first HTML render, not
// at start-up: parsing took 0.9-1.2 ms of CPU in every command, traces to
// text or JSON included. A parse error is the program's own (the source is
// embedded), so it panics as template.Must would have at start-up; the
// tests render every page.
var htmlTemplates = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("html").Parse(htmlSource))
})

// renderHTML writes the report as one self-contained HTML page.
func renderHTML(w io.Writer, r *Result) error {
	return htmlExecute(w, "report", htmlReportPage(r), "render report as html")
}

// htmlExecute runs the named template into a buffer first, so that a
// failure writes nothing.
func htmlExecute(w io.Writer, name string, data any, what string) error {
	var b bytes.Buffer
	if err := htmlTemplates().ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// htmlPage is the whole report page.
type htmlPage struct {
	Title      string
	Incomplete string // the banner's text; "" when the run completed
	Verdict    string
	Headline   string
	Facts      []htmlFact
	Probing    []string // probingTexts: the protocol, what it measures, the backends
	RTT        []htmlDistRow
	RTTAxis    htmlAxis
	RTTNote    string // why there is no round trip; "" when there is
	Clocks     string
	Chain      htmlChain
	Waterfall  htmlWaterfall
	Segments   htmlDists
	Losses     []string
	NAT        []string
	Notes      []htmlNotes
	Baseline   *htmlBaseline
	Run        htmlRun
}

// htmlFact is one count of the headline: "30 sent".
type htmlFact struct {
	Key   string // a hook: data-fact
	N     int
	Label string
}

// htmlNotes are the notes on one part of the report.
type htmlNotes struct {
	On    string
	Notes []string
}

// htmlReportPage lays out r.
func htmlReportPage(r *Result) htmlPage {
	p := htmlPage{
		Title:     "cnitrace: " + headline(r),
		Verdict:   r.Verdict.Text,
		Headline:  headline(r),
		Facts:     htmlFacts(r),
		Probing:   probingTexts(r),
		Clocks:    clocksText(r),
		Chain:     htmlChainOf(r, true),
		Waterfall: htmlWaterfallOf(r),
		Segments:  htmlDistsOf(r),
		Losses:    htmlLosses(r),
		NAT:       rewriteTexts(r),
		Notes:     htmlNotesOf(r),
		Baseline:  htmlBaselineOf(r),
		Run:       htmlRunOf(r.Run),
	}
	if r.Incomplete {
		p.Incomplete = incompleteText
	}
	p.RTT, p.RTTAxis = htmlDistRowsOf(rttRows(r))
	if len(p.RTT) == 0 {
		p.RTTNote = noRTT
	}
	return p
}

// htmlFacts are the headline's counts; late, dropped and ignored only when
// some were.
func htmlFacts(r *Result) []htmlFact {
	f := []htmlFact{
		{"sent", r.Probes.Sent, "probes sent"},
		{"answered", r.Probes.Received, "answered"},
		{"lost", r.Lost(), "lost on the path"},
	}
	for _, x := range []htmlFact{
		{"late", r.Probes.Late, "late (answered after the timeout)"},
		{"dropped", r.Probes.Dropped, "dropped by cnitrace (not the path)"},
		{"ignored", r.Probes.Ignored, "observations ignored (other runs, foreign packets)"},
	} {
		if x.N > 0 {
			f = append(f, x)
		}
	}
	return f
}

// htmlLosses says where probes were lost: each segment that lost some,
// those that could not be located, and the source's own stack.
func htmlLosses(r *Result) []string {
	var s []string
	for _, g := range r.Segments {
		if g.Lost > 0 {
			l := Loss{From: g.From, To: g.To, Direction: g.Direction, Class: g.Class, Lost: g.Lost}
			s = append(s, strings.TrimSuffix(lossText(r, &l), "; "))
		}
	}
	if _, t := unknownText(r); t != "" {
		s = append(s, strings.TrimSuffix(t, "; "))
	}
	if t := stackLossText(r); t != "" {
		s = append(s, "source stack: "+t)
	}
	return s
}

// htmlNotesOf gathers where the numbers are weak: the figures that are
// approximate, what cnitrace itself missed, and every segment's notes.
func htmlNotesOf(r *Result) []htmlNotes {
	var run []string
	for _, t := range []string{exactText(r), socketText(r)} {
		if t != "" {
			run = append(run, t)
		}
	}
	run = append(run, captureTexts(r)...)
	var out []htmlNotes
	if len(run) > 0 {
		out = append(out, htmlNotes{On: "the run", Notes: run})
	}
	if len(r.RTTNotes) > 0 {
		out = append(out, htmlNotes{On: "round trips", Notes: htmlNoteStrings(r.RTTNotes)})
	}
	for _, s := range r.Segments {
		if len(s.Notes) > 0 {
			out = append(out, htmlNotes{On: r.segmentLabel(s) + " (" + s.Direction + ")", Notes: htmlNoteStrings(s.Notes)})
		}
	}
	return out
}

func htmlNoteStrings(notes []Note) []string {
	s := make([]string, len(notes))
	for i, n := range notes {
		s[i] = n.String()
	}
	return s
}

// htmlRun is the run block: how the report was made.
type htmlRun struct {
	Recorded                       bool
	Command, Version, Kernel, Node string
	Started, Ended, Took           string
}

// htmlRunOf describes the run block; Recorded is false when the caller gave
// none.
func htmlRunOf(run *Run) htmlRun {
	if run == nil {
		return htmlRun{}
	}
	h := htmlRun{
		Recorded: true, Command: run.CommandLine(), Version: run.Version, Kernel: run.Kernel, Node: run.Node,
		Started: htmlTime(run.Started), Ended: htmlTime(run.Ended),
	}
	if !run.Started.IsZero() && !run.Ended.IsZero() {
		h.Took = run.Ended.Sub(run.Started).Round(time.Millisecond).String()
	}
	return h
}

// htmlTime formats a time of the run block in UTC, to the millisecond as
// the Markdown report does; "-" when unknown.
func htmlTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// htmlSegmentKey is a segment's hook in the page: "p0-p1-request".
func htmlSegmentKey(s Segment) string { return s.From + "-" + s.To + "-" + s.Direction }

// htmlClassHook is the CSS class of a segment class: known ones by name,
// others "other" (classes are an open set; the text says which).
func htmlClassHook(class string) string {
	switch class {
	case ClassEgress, ClassIngress, ClassForwarding, ClassNetwork, ClassPeer, ClassNode:
		return "c-" + class
	}
	return "c-other"
}
