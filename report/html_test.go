package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// htmlFixture is a report the HTML tests render: the golden scenario and
// two that stress the page.
type htmlFixture struct {
	name string
	r    *Result
}

// htmlFixtures are the golden scenario; the same with hostile strings in
// every field a page shows (interface names, netns, target, pod, verdict,
// notes, class, command); and a run with a baseline, losses in several
// segments and in the source stack, NAT rewrites, an interruption and a
// run block.
func htmlFixtures(t *testing.T) []htmlFixture {
	t.Helper()
	return []htmlFixture{
		{"golden", flannelResult(t)},
		{"hostile", hostileResult(t)},
		{"baseline-losses", baselineLossResult(t)},
	}
}

// hostile are strings that would run a script, fetch something or break
// out of an attribute if the page did not escape them.
const (
	hostileScript = `veth<script>alert(1)</script>`
	hostileAttr   = `"><img src=//evil.example/x.png onerror=alert(2)>`
	hostileQuote  = `net:['onmouseover='alert(3)]`
	hostileStyle  = `</style><style>@import url(http://evil.example/a.css)</style>`
)

func hostileResult(t *testing.T) *Result {
	t.Helper()
	r := flannelResult(t)
	r.Points[1].Interface = hostileScript
	r.Points[2].Interface = hostileAttr
	r.Points[3].NetNS = hostileQuote
	r.Points[4].Kind = hostileStyle
	r.Source.Pod = `default/<b>web</b>`
	r.Target = `10.244.2.2"><script>alert(4)</script>`
	r.Verdict.Text += " " + hostileStyle
	r.Segments[2].Class = `</td></tr></table><script>alert(5)</script>`
	r.Segments[2].Notes = append(r.Segments[2].Notes, Note{Kind: "x<y", Text: hostileAttr})
	r.Run.Command = append(r.Run.Command, "--iface", hostileScript, hostileAttr)
	r.Run.Node = hostileQuote
	return r
}

func baselineLossResult(t *testing.T) *Result {
	t.Helper()
	r := run{
		n: 20, delays: designDelays(), inherit: map[int]bool{segVethBridge: true},
		lostIn: map[int]int{3: segNetwork, 7: segNetwork, 9: segBridgeVXLAN, 12: -1, 15: numSegs},
	}.correlate(t)
	r.Baseline = compareBaseline(pod(150, -1, 170, 160, 155), node(100, 105, 110, -1, 120))
	r.Baseline.NetNS, r.Baseline.Observations = hostNS, 16
	r.Translated = "10.244.2.2"
	r.Target = "10.96.0.10"
	r.Rewrites = []Rewrite{{From: "p2", To: "p3", Direction: DirRequest, Field: "dst", Old: "10.96.0.10", New: "10.244.2.2"}}
	r.Points[2].Request = &Addrs{Src: "10.244.1.2", Dst: "10.96.0.10"}
	r.Points[3].Request = &Addrs{Src: "10.244.1.2", Dst: "10.244.2.2"}
	r.Incomplete = true
	r.Run = flannelRun()
	return r
}

func renderHTMLString(t *testing.T, r *Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, r, FormatHTML); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestHTMLSelfContained: nothing in the page can fetch or run anything,
// in the source as written and in the tree a browser builds from it.
func TestHTMLSelfContained(t *testing.T) {
	for _, f := range htmlFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			page := renderHTMLString(t, f.r)
			checkSelfContained(t, page)
			doc, err := html.Parse(strings.NewReader(page))
			if err != nil {
				t.Fatalf("parse the page: %v", err)
			}
			checkTree(t, doc)
			checkHooks(t, doc, f.r)
		})
	}
}

// fetchingAttrs are the attributes that make a browser fetch what they
// name.
var fetchingAttrs = []string{"src", "href", "xlink:href", "action", "formaction", "srcset", "poster", "data", "background", "ping"}

// cssURL matches a url( in CSS and what it names.
var cssURL = regexp.MustCompile(`(?i)url\(\s*["']?\s*([^"')\s]*)`)

// checkSelfContained fails t with every problem selfContained finds.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, p := range selfContained(page) {
		t.Error(p)
	}
}

// selfContained checks the page's source for what fetches or runs:
// markup first, then, in the tree a browser builds, every attribute that
// fetches and every stylesheet (a style element or attribute), which may
// name nothing outside the page. Hostile text only shows as text. It
// returns the problems found.
func selfContained(page string) []string {
	var bad []string
	low := strings.ToLower(page)
	for _, m := range []string{"<script", "<link", "<iframe", "<object", "<embed", "<img", "javascript:"} {
		if strings.Contains(low, m) {
			bad = append(bad, fmt.Sprintf("got %q in the page, want none", m))
		}
	}
	const csp = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`
	if !strings.Contains(page, csp) {
		bad = append(bad, "got no "+csp+" in the page")
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return append(bad, fmt.Sprintf("parse the page: %v", err))
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "style" {
			bad = append(bad, cssProblems("<style>", textOf(n))...)
		}
		for _, a := range n.Attr {
			key := strings.ToLower(a.Key)
			if a.Namespace != "" {
				key = a.Namespace + ":" + key
			}
			switch {
			case key == "style":
				bad = append(bad, cssProblems("a style attribute", a.Val)...)
			case slices.Contains(fetchingAttrs, key) && !strings.HasPrefix(a.Val, "#") && !strings.HasPrefix(a.Val, "data:"):
				bad = append(bad, fmt.Sprintf("got %s=%q on <%s>, want no reference out of the page", key, a.Val, n.Data))
			}
		}
	}
	return bad
}

// cssProblems checks a stylesheet: no @import, and url() only of a
// fragment of the page or data.
func cssProblems(where, css string) []string {
	var bad []string
	if strings.Contains(strings.ToLower(css), "@import") {
		bad = append(bad, "got @import in "+where+", want none")
	}
	for _, m := range cssURL.FindAllStringSubmatch(css, -1) {
		if u := strings.ToLower(m[1]); !strings.HasPrefix(u, "#") && !strings.HasPrefix(u, "data:") {
			bad = append(bad, fmt.Sprintf("got url(%s in %s, want only url(#fragment) and data: URLs", m[1], where))
		}
	}
	return bad
}

// TestSelfContainedCatches: the check finds each way a page could fetch
// or run something, so that its silence on the report means something.
func TestSelfContainedCatches(t *testing.T) {
	const head = `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"><style>p{}</style></head><body>`
	for _, body := range []string{
		`<script>1</script>`,
		`<IMG SRC="http://x/a.png">`,
		`<a href="https://x/">x</a>`,
		`<svg><image xlink:href="//x/a.png"/></svg>`,
		`<svg><use href="https://x/s.svg#a"/></svg>`,
		`<p style="background: url( 'http://x/a.png' )">x</p>`,
		`<style>@import "x.css";</style>`,
		`<style>p { background: url(x.png) }</style>`,
		`<video poster="http://x/p.png"></video>`,
	} {
		if got := selfContained(head + body + `</body></html>`); len(got) == 0 {
			t.Errorf("got no problem with %s", body)
		}
	}
	if got := selfContained(head + `<p style="fill: url(#hatch)">&lt;script src=//x&gt;</p></body></html>`); len(got) != 0 {
		t.Errorf("got problems %q with a page that fetches nothing", got)
	}
	if got := selfContained(`<html><body>no policy</body></html>`); len(got) == 0 {
		t.Errorf("got no problem with a page without the Content-Security-Policy")
	}
}

// checkTree checks the parsed page: no element that runs or fetches,
// no event handler attribute, one stylesheet, the one in the head.
func checkTree(t *testing.T, doc *html.Node) {
	t.Helper()
	styles := 0
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "script", "img", "link", "iframe", "object", "embed", "audio", "video", "source", "base", "form", "image", "use", "foreignobject":
			t.Errorf("got a <%s> element, want none", n.Data)
		case "style":
			styles++
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("got attribute %s=%q on <%s>, want no event handlers", a.Key, a.Val, n.Data)
			}
		}
	}
	if styles != 1 {
		t.Errorf("got %d <style> elements, want 1", styles)
	}
}

// checkHooks checks what the page must show, by its hooks: the verdict,
// every point and every segment of r.
func checkHooks(t *testing.T, doc *html.Node, r *Result) {
	t.Helper()
	h := hooksOf(doc)
	if got, want := h.verdict, "Verdict"+r.Verdict.Text; got != want {
		t.Errorf("got verdict %q, want %q", got, want)
	}
	for _, p := range r.Points {
		if !h.points[p.ID] {
			t.Errorf("got no data-point=%q in the page", p.ID)
		}
	}
	for _, s := range r.Segments {
		if k := htmlSegmentKey(s); h.segments[k] < 3 { // in the chain, the waterfall and the table
			t.Errorf("got data-segment=%q %d times, want it in the path, the waterfall and the table", k, h.segments[k])
		}
	}
}

// pageHooks are what a page shows by its hooks.
type pageHooks struct {
	verdict  string          // the text of id="verdict"
	points   map[string]bool // data-point values
	segments map[string]int  // data-segment values, how often
}

func hooksOf(doc *html.Node) pageHooks {
	h := pageHooks{points: map[string]bool{}, segments: map[string]int{}}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			switch a.Key {
			case "id":
				if a.Val == "verdict" {
					h.verdict = textOf(n)
				}
			case "data-point":
				h.points[a.Val] = true
			case "data-segment":
				h.segments[a.Val]++
			}
		}
	}
	return h
}

// textOf is the text under n, as a browser's textContent.
func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// TestHTMLEscapes: hostile strings come out as text, where they were put,
// and nowhere as markup.
func TestHTMLEscapes(t *testing.T) {
	r := hostileResult(t)
	doc, err := html.Parse(strings.NewReader(renderHTMLString(t, r)))
	if err != nil {
		t.Fatal(err)
	}
	text := textOf(doc)
	for _, s := range []string{hostileScript, hostileAttr, hostileQuote, hostileStyle, r.Target, r.Source.Pod, r.Segments[2].Class} {
		if !strings.Contains(text, s) {
			t.Errorf("got no text %q in the page", s)
		}
	}
	if h := hooksOf(doc); !strings.Contains(h.verdict, hostileStyle) {
		t.Errorf("got verdict %q, want it to end with the hostile text", h.verdict)
	}
}

// TestHTMLFromSavedJSON: a report saved as JSON and read back renders the
// same page, byte for byte (cnitrace report FILE.json --format html).
func TestHTMLFromSavedJSON(t *testing.T) {
	for _, f := range htmlFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			var js bytes.Buffer
			if err := Render(&js, f.r, FormatJSON); err != nil {
				t.Fatal(err)
			}
			var back Result
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if got, want := renderHTMLString(t, &back), renderHTMLString(t, f.r); got != want {
				t.Errorf("got a different page from the saved JSON:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestHTMLSections checks what the page says in its sections, fixture by
// fixture.
func TestHTMLSections(t *testing.T) {
	tests := []struct {
		name string
		r    func(t *testing.T) *Result
		want []string
		not  []string
	}{
		{"golden", flannelResult, []string{
			`<p id="headline">30 probes to 10.244.2.2 from eth0@net:[4026532301] (10.244.1.2): 28 answered, 2 lost</p>`,
			`Probe seq 4:`, `131.1 us`,
			`<span class="lost">X 1 lost here</span>`, `<span class="unknown">? 1 not located</span>`,
			`class="wf c-forwarding merged"`, // cni0 -> flannel.1 spans veth -> cni0
			`not separable: merged into next; this probe&#39;s stamp at p2 was inherited`,
			`1 of 30 probes (3.3%) lost in network beyond eth0@net:[4026531840] (out and back: wire, remote node, remote pod)`,
			`web-0 report.md`, `<dd>node-a</dd>`, `<dd>6.12.48&#43;deb13-amd64</dd>`,
		}, []string{`id="incomplete"`, `id="baseline"`, `id="nat"`}},
		{"baseline and losses", baselineLossResult, []string{
			`<div id="incomplete" role="alert">`, `<section id="baseline">`, `overhead: p50 50.0 us`,
			`source stack: 1 requests lost between the probe socket and p0 eth0`,
			`data-segment="socket-p0-request"><span class="dir">&darr; request</span><b>egress</b> <code>probe socket -&gt; p0 eth0</code><span class="time">the source&#39;s own stack</span><span class="lost">X 1 lost here</span>`,
			`<span class="lost">X 2 lost here</span>`, // the network
			`<section id="nat">`, `NAT: request dst 10.96.0.10 -&gt; 10.244.2.2 between p2 cni0 and p3 flannel.1`,
			`request 10.244.1.2 &gt; 10.96.0.10`,
		}, nil},
		{"no run block, no probe", func(*testing.T) *Result { return &Result{} }, []string{
			`Not recorded: the report was made without`, `no probe was seen at every point`, `no probe was answered`,
		}, []string{`data-point=`, `data-segment="p`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := renderHTMLString(t, tt.r(t))
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("got no %q in the page", w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(page, w) {
					t.Errorf("got %q in the page, want none", w)
				}
			}
		})
	}
}

// TestHTMLTypicalMismatch: a typical probe that does not fit the segments
// (a report edited by hand) is not drawn, and says so.
func TestHTMLTypicalMismatch(t *testing.T) {
	r := flannelResult(t)
	r.Typical.Steps = r.Typical.Steps[1:]
	page := renderHTMLString(t, r)
	if !strings.Contains(page, "the typical probe&#39;s steps do not match the segments") {
		t.Errorf("got no mismatch note in the page")
	}
}

func TestHTMLAxis(t *testing.T) {
	tests := []struct {
		top   float64
		ticks []string
		end   string
	}{
		{131.1, []string{"0", "40", "80", "120"}, "160"},
		{65.6, []string{"0", "20", "40", "60"}, "80"},
		{4, []string{"0", "1", "2", "3"}, "4"},
		{0.7, []string{"0", "0.2", "0.4", "0.6"}, "0.8"},
		{0, []string{"0", "0.03", "0.05", "0.08"}, "0.1"},
		{2500, []string{"0", "800", "1600", "2400"}, "3200"},
	}
	for _, tt := range tests {
		a := htmlAxisOf(tt.top)
		if strings.Join(a.Ticks, " ") != strings.Join(tt.ticks, " ") || a.End != tt.end {
			t.Errorf("htmlAxisOf(%v): got %v %q, want %v %q", tt.top, a.Ticks, a.End, tt.ticks, tt.end)
		}
		if x := a.x(tt.top); x > htmlAxisWidth || (tt.top > 0 && x < htmlAxisWidth/2) {
			t.Errorf("htmlAxisOf(%v): the top lands at %v of %d", tt.top, x, htmlAxisWidth)
		}
	}
}

func TestHTMLRunBlock(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	got := htmlRunOf(&Run{Command: []string{"cnitrace", "trace", "--out", "a b.html"}, Version: "v1", Kernel: "6.1",
		Started: start, Ended: start.Add(1500 * time.Millisecond)})
	want := htmlRun{Recorded: true, Command: "cnitrace trace --out 'a b.html'", Version: "v1", Kernel: "6.1",
		Started: "2026-12-01T10:00:00.000Z", Ended: "2026-12-01T10:00:01.500Z", Took: "1.5s"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
