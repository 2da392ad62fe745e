package report

// The Markdown report is checked with a real GFM renderer, goldmark with
// its GFM extensions (tables, strikethrough, autolinks), as GitHub and
// GitLab render it: goldmark is used by these tests only, never by the
// product.

import (
	"bytes"
	"html"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
)

// gfm parses and renders as GitHub does: GFM, and the HTML a document
// holds passed through (goldmark leaves it out by default), so that the
// tests see what a ticket would show.
var gfm = goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(gmhtml.WithUnsafe()))

// mdTableFound is a table as goldmark parsed it: its cells as plain text,
// header first.
type mdTableFound struct {
	rows [][]string
}

// parseMD parses src as GFM and returns its tables, and every node of a
// kind that may not appear in a report outside its details block (raw
// HTML, links, images, code spans, strikethrough), with the HTML blocks.
func parseMD(t *testing.T, src []byte) (tables []mdTableFound, html []string, other []string) {
	t.Helper()
	doc := gfm.Parser().Parse(text.NewReader(src))
	err := ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n.Kind() {
		case east.KindTable:
			tables = append(tables, tableOf(t, n, src))
			return ast.WalkSkipChildren, nil
		case ast.KindHTMLBlock:
			hb := n.(*ast.HTMLBlock)
			for i := 0; i < hb.Lines().Len(); i++ {
				seg := hb.Lines().At(i)
				html = append(html, strings.TrimSpace(string(seg.Value(src))))
			}
			if hb.HasClosure() {
				html = append(html, strings.TrimSpace(string(hb.ClosureLine.Value(src))))
			}
		case ast.KindRawHTML, ast.KindLink, ast.KindAutoLink, ast.KindImage, ast.KindCodeSpan, east.KindStrikethrough:
			other = append(other, n.Kind().String())
		}
		return ast.WalkContinue, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tables, html, other
}

// tableOf returns the cells of a table node as plain text.
func tableOf(t *testing.T, table ast.Node, src []byte) mdTableFound {
	t.Helper()
	var found mdTableFound
	for row := table.FirstChild(); row != nil; row = row.NextSibling() {
		var cells []string
		for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
			cells = append(cells, cellText(t, cell, src))
		}
		found.rows = append(found.rows, cells)
	}
	return found
}

var cellTag = regexp.MustCompile(`^<t[hd][^>]*>|</t[hd]>\n?$`)

// cellText renders one cell and returns its text; it fails the test when
// the cell holds any markup (emphasis, a link, a code span, HTML).
func cellText(t *testing.T, cell ast.Node, src []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := gfm.Renderer().Render(&b, src, cell); err != nil {
		t.Fatal(err)
	}
	inner := cellTag.ReplaceAllString(b.String(), "")
	if strings.ContainsAny(inner, "<>") {
		t.Errorf("got markup in a table cell: %q", b.String())
	}
	return html.UnescapeString(inner)
}

// checkTables checks that every row of every table has the header's
// number of cells, and that every source line of each table has the same
// number of unescaped '|' as its header line: independently of how
// goldmark pads or drops cells.
func checkTables(t *testing.T, src []byte, tables []mdTableFound) {
	t.Helper()
	for _, tb := range tables {
		for i, row := range tb.rows {
			if len(row) != len(tb.rows[0]) {
				t.Errorf("table %q: row %d has %d cells %q, want %d", tb.rows[0][0], i, len(row), row, len(tb.rows[0]))
			}
		}
	}
	blocks := tableBlocks(string(src))
	if len(blocks) != len(tables) {
		t.Errorf("got %d blocks of lines starting with '|', goldmark found %d tables", len(blocks), len(tables))
	}
	for _, block := range blocks {
		want := unescapedPipes(block[0])
		for _, line := range block {
			if got := unescapedPipes(line); got != want {
				t.Errorf("got %d unescaped '|' in %q, want %d as in its header %q", got, line, want, block[0])
			}
		}
	}
}

// tableBlocks returns the runs of consecutive lines that start with '|'.
func tableBlocks(src string) [][]string {
	var blocks [][]string
	in := false
	for _, line := range strings.Split(src, "\n") {
		switch {
		case strings.HasPrefix(line, "|") && in:
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], line)
		case strings.HasPrefix(line, "|"):
			blocks, in = append(blocks, []string{line}), true
		default:
			in = false
		}
	}
	return blocks
}

// unescapedPipes counts the '|' in line not preceded by an odd number of
// backslashes.
func unescapedPipes(line string) int {
	n, backslashes := 0, 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			backslashes++
			continue
		case '|':
			if backslashes%2 == 0 {
				n++
			}
		}
		backslashes = 0
	}
	return n
}

// tableHeads returns the first header cell of every table, which names it.
func tableHeads(tables []mdTableFound) []string {
	var heads []string
	for _, tb := range tables {
		heads = append(heads, tb.rows[0][0])
	}
	return heads
}

// tableNamed returns the table whose first header cell is head.
func tableNamed(t *testing.T, tables []mdTableFound, head string) mdTableFound {
	t.Helper()
	for _, tb := range tables {
		if tb.rows[0][0] == head {
			return tb
		}
	}
	t.Fatalf("got tables %q, want one headed %q", tableHeads(tables), head)
	return mdTableFound{}
}

// detailsHTML is the only HTML a Markdown report holds.
var detailsHTML = []string{"<details>", "<summary>How this report was made</summary>", "</details>"}

func TestMarkdownGolden(t *testing.T) {
	src, err := os.ReadFile(goldenFile(FormatMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	tables, htmls, other := parseMD(t, src)
	checkTables(t, src, tables)
	if got, want := tableHeads(tables), []string{"round trip", "id", "dir"}; !slices.Equal(got, want) {
		t.Errorf("got tables %q, want %q", got, want)
	}
	r := flannelResult(t)
	if got, want := len(tableNamed(t, tables, "id").rows)-1, len(r.Points); got != want {
		t.Errorf("got %d points in the points table, want %d", got, want)
	}
	segs := tableNamed(t, tables, "dir")
	if got, want := len(segs.rows)-1, len(r.Segments); got != want {
		t.Errorf("got %d segments in the segment table, want %d", got, want)
	}
	wantHead := []string{"dir", "class", "segment", "p50 us", "p90 us", "p99 us", "max us", "seen", "lost", "unknown", "notes"}
	if !slices.Equal(segs.rows[0], wantHead) {
		t.Errorf("got segment columns %q, want %q", segs.rows[0], wantHead)
	}
	if got, want := segs.rows[3][2], "p2 cni0 -> p3 flannel.1 *"; got != want {
		t.Errorf("got segment %q, want %q", got, want)
	}
	if !slices.Equal(htmls, detailsHTML) {
		t.Errorf("got HTML %q, want only the details block %q", htmls, detailsHTML)
	}
	if len(other) > 0 {
		t.Errorf("got %v in the report, want none", other)
	}
	for _, want := range []string{"**Verdict:** 1 of 30 probes", "#### Segments", "#### Losses", "#### Confidence notes",
		"```sh\ncnitrace trace --netns /run/netns/web-0 --to 10.244.2.2 --interval 10ms --format markdown --out 'web-0 report.md'\n```"} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("got no %q in the Markdown report", want)
		}
	}
}

// TestMarkdownSections: each part of a Result that has a table of its own
// gets it, well formed, and only then.
func TestMarkdownSections(t *testing.T) {
	for _, tc := range variedResults(t) {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Render(&b, tc.r, FormatMarkdown); err != nil {
				t.Fatal(err)
			}
			tables, htmls, other := parseMD(t, b.Bytes())
			checkTables(t, b.Bytes(), tables)
			want := []string{"id", "dir"}
			if tc.r.RTT != nil {
				want = slices.Insert(want, 0, "round trip")
			}
			if len(tc.r.Rewrites) > 0 {
				want = append(want, "point")
			}
			if tc.r.Baseline != nil && (tc.r.Baseline.Pod != nil || tc.r.Baseline.Node != nil) {
				want = append(want, "baseline round trip")
			}
			if got := tableHeads(tables); !slices.Equal(got, want) {
				t.Errorf("got tables %q, want %q", got, want)
			}
			if tc.r.Run == nil && len(htmls) > 0 || tc.r.Run != nil && !slices.Equal(htmls, detailsHTML) {
				t.Errorf("got HTML %q, want the details block only with a run block", htmls)
			}
			if len(other) > 0 {
				t.Errorf("got %v in the report, want none", other)
			}
		})
	}
}

// hostile are names a decoded report could carry: Markdown, HTML, a table
// row, a line break, control and non-ASCII characters.
var hostile = []string{
	"eth|0", "`veth`", "<script>alert(1)</script>", "br0\n| x | y |", "**bold**_it_", "[x](http://evil.example)",
	"&lt;b&gt;", "~~gone~~", "$x^2$", "# head", "back\\|slash\\", "</details>", "caf\u00e9\x1b[31m", "www.evil.example",
}

// TestMarkdownHostileNames puts hostile strings in every name the report
// prints and in the command: tables keep their cells, each name reads
// back as itself (made ASCII, line breaks as spaces), and nothing but the
// details block is HTML, a link or a code span.
func TestMarkdownHostileNames(t *testing.T) {
	r := flannelResult(t)
	for i := range r.Points {
		r.Points[i].Interface = hostile[i%len(hostile)]
		r.Points[i].NetNS = hostile[(i+5)%len(hostile)]
		r.Points[i].Kind = hostile[(i+9)%len(hostile)]
	}
	r.Source.Pod, r.Target = "<b>default/web</b>", "10.0.0.1|<i>"
	r.Verdict.Text = strings.Join(hostile, " ")
	r.Segments[0].Class = "egress|`x`"
	r.Segments[0].Notes = append(r.Segments[0].Notes, Note{Kind: "a|b<c>", Text: hostile[2]})
	r.Run.Command = append(r.Run.Command, hostile...)
	r.Run.Node = "</details><script>x</script>"
	var b bytes.Buffer
	if err := Render(&b, r, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	tables, htmls, other := parseMD(t, b.Bytes())
	checkTables(t, b.Bytes(), tables)
	if !slices.Equal(htmls, detailsHTML) {
		t.Errorf("got HTML %q, want only the details block %q", htmls, detailsHTML)
	}
	if len(other) > 0 {
		t.Errorf("got %v in the report, want none", other)
	}
	pts := tableNamed(t, tables, "id")
	for i, p := range r.Points {
		row := pts.rows[i+1]
		for j, want := range []string{p.ID, p.Interface, p.NetNS, p.Kind} {
			if want = strings.ReplaceAll(ascii(want), "\n", " "); row[j] != want {
				t.Errorf("point %s: got cell %q, want %q", p.ID, row[j], want)
			}
		}
	}
	var out bytes.Buffer
	if err := gfm.Convert(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<b>", "<i>", "<a ", "<code>", "<del>", "<h1"} {
		if bytes.Contains(out.Bytes(), []byte(bad)) {
			t.Errorf("got %q in the HTML goldmark made of the report, want none", bad)
		}
	}
	if got := bytes.Count(out.Bytes(), []byte("</details>")); got != 1 {
		t.Errorf("got %d </details> in the HTML, want 1", got)
	}
}

func TestMD(t *testing.T) {
	tests := []struct{ in, want string }{
		{"eth0@net:[4026531840]", `eth0@net:\[4026531840\]`},
		{"a|b", `a\|b`},
		{"`x`", "\\`x\\`"},
		{"<script>", `\<script\>`},
		{"*_~#$&", `\*\_\~\#\$\&`},
		{`C:\x`, `C:\\x`},
		{"two\nlines", "two lines"},
		{"caf\u00e9\x1b", "caf??"},
		{"p0 eth0 -> p1", `p0 eth0 -\> p1`},
		{"plain 10.244.2.2 (ok), yes: 5.4 us", "plain 10.244.2.2 (ok), yes: 5.4 us"},
		{"www.x WWW.y http://z", `www\.x WWW\.y http\://z`},
	}
	for _, tt := range tests {
		if got := md(tt.in); got != tt.want {
			t.Errorf("md(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMDReadsBack: whatever the string, goldmark renders md of it as a
// paragraph of exactly that text, made ASCII, in a list item and in a
// table cell alike.
func TestMDReadsBack(t *testing.T) {
	for _, s := range append(hostile, "1. one", "- dash", "> quote", "    four", "***", "===", "a  b", "x_y_z", "*a*", "&amp;", "&#60;") {
		want := strings.TrimSpace(strings.Join(strings.Fields(strings.ReplaceAll(ascii(s), "\n", " ")), " "))
		src := []byte("| h |\n| --- |\n| " + md(s) + " |\n\n- item: " + md(s) + "\n")
		tables, htmls, other := parseMD(t, src)
		if len(tables) != 1 || len(tables[0].rows) != 2 || len(tables[0].rows[1]) != 1 {
			t.Fatalf("md(%q): got tables %q, want one of one cell", s, tables)
		}
		if got := strings.Join(strings.Fields(tables[0].rows[1][0]), " "); got != want {
			t.Errorf("md(%q) in a cell: got %q, want %q", s, got, want)
		}
		if len(htmls) > 0 || len(other) > 0 {
			t.Errorf("md(%q): got HTML %q and %v, want plain text", s, htmls, other)
		}
		var out bytes.Buffer
		if err := gfm.Convert(src, &out); err != nil {
			t.Fatal(err)
		}
		_, item, _ := strings.Cut(out.String(), "<li>item: ")
		item, _, ok := strings.Cut(item, "</li>")
		if got := strings.Join(strings.Fields(html.UnescapeString(item)), " "); !ok || got != want {
			t.Errorf("md(%q) in a list item: got %q, want %q", s, got, want)
		}
	}
}

// TestShellQuote: a shell splits the quoted command back into its
// arguments.
func TestShellQuote(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("skipping, no bash to split the command: %v", err)
	}
	args := append([]string{"cnitrace", "trace", "--out", "web-0 report.md", "", "it's", "a=b", "--to=10.0.0.1", "new\nline", "tab\there", "caf\u00e9", "$HOME", "`id`", "!x", "*"}, hostile...)
	line := shellQuote(args)
	if ascii(line) != line || strings.Contains(line, "\n") {
		t.Fatalf("got %q, want one line of printable ASCII", line)
	}
	out, err := exec.Command(bash, "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("bash -c %q: %v", line, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !slices.Equal(got, args) {
		t.Errorf("bash split %q into %q, want %q", line, got, args)
	}
	if got, want := shellQuote([]string{"cnitrace", "trace", "--to", "10.244.2.2"}), "cnitrace trace --to 10.244.2.2"; got != want {
		t.Errorf("got %q, want %q: safe arguments stay as they are", got, want)
	}
	if got := shellQuote([]string{"FOO=bar", "x=y"}); got != "'FOO=bar' x=y" {
		t.Errorf("got %q, want the command quoted lest it be taken for an assignment", got)
	}
}
