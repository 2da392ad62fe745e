package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// renderMarkdown writes the report as GitHub-flavoured Markdown that pastes
// into a ticket (GitHub, GitLab, Jira's Markdown): the verdict, the
// headline and round trips, the points, the segments, the losses, the NAT
// rewrites, the confidence notes, and a collapsed block saying how the
// report was made. No line relies on alignment. Everything the report
// carries goes through md, so no name can break a table row or open HTML,
// a link or a code span; the details block is the only HTML.
func renderMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString("**Verdict:** " + md(r.Verdict.Text) + "\n\n")
	b.WriteString(md("cnitrace: "+headline(r)) + "\n\n")
	writeMDList(&b, probingTexts(r))
	writeMDRTT(&b, r)
	b.WriteString("#### Path\n\n")
	writeMDPoints(&b, pointRows(r.Points))
	writeMDSegments(&b, r)
	writeMDLosses(&b, r)
	writeMDRewrites(&b, r)
	writeMDNotes(&b, r)
	writeMDRun(&b, r.Run)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("render report as markdown: %w", err)
	}
	return nil
}

// writeMDRTT writes the round trips as a table, and the clocks they were
// measured with.
func writeMDRTT(b *strings.Builder, r *Result) {
	rows := rttRows(r)
	if len(rows) == 0 {
		b.WriteString("rtt: " + noRTT + "\n\n")
		return
	}
	rows[0].label = "rtt (" + rows[0].label + ")"
	writeMDDists(b, "round trip", rows)
	if s := clocksText(r); s != "" {
		b.WriteString(md("clocks: "+s) + "\n\n")
	}
}

// writeMDDists writes distributions as a table whose first column, named
// head, says what each measures.
func writeMDDists(b *strings.Builder, head string, rows []distRow) {
	t := mdTable{head: []string{head, "p50 us", "p90 us", "p99 us", "max us"}, right: []bool{false, true, true, true, true}}
	for _, row := range rows {
		d := row.d
		t.add(row.label, us1(d.P50), us1(d.P90), us1(d.P99), us1(d.Max))
	}
	t.write(b)
}

// us1 formats microseconds as the tables do: one decimal.
func us1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// pointRow is a capture point as the Markdown tables of the report and of
// the path show it.
type pointRow struct {
	id, iface, netns, kind, requestDir string
	ifindex                            int
}

func pointRows(pts []Point) []pointRow {
	rows := make([]pointRow, 0, len(pts))
	for _, p := range pts {
		rows = append(rows, pointRow{p.ID, p.Interface, p.NetNS, p.Kind, p.RequestDir, p.Ifindex})
	}
	return rows
}

// writeMDPoints writes the points table.
func writeMDPoints(b *strings.Builder, pts []pointRow) {
	t := mdTable{head: []string{"id", "interface", "netns", "kind", "ifindex", "request"}, right: []bool{false, false, false, false, true, false}}
	for _, p := range pts {
		t.add(p.id, p.iface, p.netns, p.kind, strconv.Itoa(p.ifindex), p.requestDir)
	}
	t.write(b)
}

// writeMDSegments writes the segment table, every column always there,
// and under it what the merged segments are timed from.
func writeMDSegments(b *strings.Builder, r *Result) {
	b.WriteString("#### Segments\n\n")
	t := mdTable{
		head:  []string{"dir", "class", "segment", "p50 us", "p90 us", "p99 us", "max us", "seen", "lost", "unknown", "notes"},
		right: []bool{false, false, false, true, true, true, true, true, true, true, false},
	}
	var merged []string
	for _, s := range r.Segments {
		name := r.segmentLabel(s)
		if s.MergedFrom != "" {
			name += " *"
			merged = append(merged, "* "+r.mergedText(s))
		}
		row := append([]string{s.Direction, s.Class, name}, numbers(s)...)
		t.add(append(row, strconv.Itoa(s.Seen), strconv.Itoa(s.Lost), strconv.Itoa(s.Unknown), noteKinds(s.Notes))...)
	}
	t.write(b)
	writeMDList(b, merged)
}

// noteKinds names the kinds of a segment's notes, in their order; the
// notes themselves are under Confidence notes.
func noteKinds(notes []Note) string {
	kinds := make([]string, 0, len(notes))
	for _, n := range notes {
		k := string(n.Kind)
		if k == "" {
			k = "other"
		}
		kinds = append(kinds, k)
	}
	return strings.Join(kinds, ", ")
}

// writeMDLosses lists where probes were lost, could not be located, or
// were not lost though unanswered.
func writeMDLosses(b *strings.Builder, r *Result) {
	b.WriteString("#### Losses\n\n")
	var items []string
	for _, s := range r.Segments {
		where := fmt.Sprintf("segment %s (%s, %s): ", r.segmentLabel(s), s.Direction, s.Class)
		if s.Lost > 0 {
			items = append(items, where+fmt.Sprintf("%d lost", s.Lost))
		}
		if s.Unknown > 0 {
			items = append(items, where+fmt.Sprintf("%d unknown: not located, the capture at %s dropped packets (%s may have passed it unseen and vanished further on)",
				s.Unknown, r.segmentName(s.To), plural(s.Unknown, "the probe", "the probes")))
		}
	}
	if s := stackLossText(r); s != "" {
		items = append(items, "source stack: "+s)
	}
	for _, s := range notLostTexts(r.Probes) {
		items = append(items, "not lost: "+s)
	}
	if s := socketText(r); s != "" {
		items = append(items, "probe socket: "+s)
	}
	if len(items) == 0 {
		items = append(items, "no probe was lost")
	}
	writeMDList(b, items)
}

// writeMDRewrites lists what NAT changed, and the addresses the probes'
// requests carried at every point; nothing when NAT changed nothing.
func writeMDRewrites(b *strings.Builder, r *Result) {
	texts := rewriteTexts(r)
	if len(texts) == 0 {
		return
	}
	b.WriteString("#### NAT rewrites\n\n")
	writeMDList(b, texts)
	if len(r.Rewrites) == 0 {
		return
	}
	t := mdTable{head: []string{"point", "request src", "request dst", "reply src", "reply dst"}, right: make([]bool, 5)}
	for _, p := range r.Points {
		row := []string{r.segmentName(p.ID), "-", "-", "-", "-"}
		if a := p.Request; a != nil {
			row[1], row[2] = a.Src, a.Dst
		}
		if a := p.Reply; a != nil {
			row[3], row[4] = a.Src, a.Dst
		}
		t.add(row...)
	}
	t.write(b)
}

// writeMDNotes lists where the report's numbers are weaker than they look,
// then the baseline, if any.
func writeMDNotes(b *strings.Builder, r *Result) {
	b.WriteString("#### Confidence notes\n\n")
	var items []string
	if r.Incomplete {
		items = append(items, "**INCOMPLETE:** "+md(incompleteText))
	}
	if s := exactText(r); s != "" {
		items = append(items, "**exact:** "+md(s))
	}
	for _, s := range captureTexts(r) {
		items = append(items, "**point** "+md(s))
	}
	for _, s := range r.Segments {
		for _, n := range s.Notes {
			items = append(items, "**segment** "+md(fmt.Sprintf("%s (%s): %s", r.segmentLabel(s), s.Direction, n)))
		}
	}
	for _, n := range r.RTTNotes {
		items = append(items, "**rtt:** "+md(n.String()))
	}
	if s := ignoredText(r); s != "" {
		items = append(items, "**ignored:** "+md(s))
	}
	if len(items) == 0 {
		items = append(items, "none")
	}
	for _, it := range items {
		b.WriteString("- " + it + "\n")
	}
	b.WriteString("\n")
	writeMDBaseline(b, r)
}

// writeMDBaseline writes the comparison with the node's own path; nothing
// without a baseline run.
func writeMDBaseline(b *strings.Builder, r *Result) {
	bl := r.Baseline
	if bl == nil {
		return
	}
	b.WriteString("**Baseline:** " + md(baselineText(r)) + "\n\n")
	if rows := baselineRows(bl); len(rows) > 0 {
		writeMDDists(b, "baseline round trip", rows)
	}
	items := []string{"overhead: " + overheadText(bl)}
	for _, n := range bl.Notes {
		items = append(items, "baseline note: "+n.String())
	}
	writeMDList(b, items)
}

// writeMDRun writes how the report was made, collapsed: the command as a
// shell would take it, the versions, the node and the times. Nothing when
// the report does not say.
func writeMDRun(b *strings.Builder, run *Run) {
	if run == nil {
		return
	}
	b.WriteString("<details>\n<summary>How this report was made</summary>\n\n")
	cmd := run.CommandLine()
	fence := strings.Repeat("`", max(3, longestRun(cmd, '`')+1))
	b.WriteString(fence + "sh\n" + cmd + "\n" + fence + "\n\n")
	ended := mdTime(run.Ended)
	if d := run.Ended.Sub(run.Started); !run.Started.IsZero() && !run.Ended.IsZero() && d >= 0 {
		ended += fmt.Sprintf(" (%s after the start)", d.Round(time.Millisecond))
	}
	writeMDList(b, []string{
		"cnitrace version: " + orUnknown(run.Version),
		"kernel: " + orUnknown(run.Kernel),
		"node: " + orUnknown(run.Node),
		"started: " + mdTime(run.Started),
		"ended: " + ended,
	})
	b.WriteString("</details>\n")
}

// mdTime is a time of the run block in UTC, to the millisecond.
func mdTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] != c {
			n = 0
			continue
		}
		n++
		longest = max(longest, n)
	}
	return longest
}

// CommandLine is the run's command as one line a POSIX shell (bash)
// splits back into the same arguments (shellQuote): what the Markdown and
// HTML reports and the bundle's version.txt show.
func (r *Run) CommandLine() string { return shellQuote(r.Command) }

// shellQuote joins args into one line a POSIX shell (bash, for $'...')
// splits back into the same args: an arg of only safe characters as it
// is, one with printable ASCII in single quotes, anything else in $'...'
// with \xNN escapes, so the line stays printable ASCII.
func shellQuote(args []string) string {
	quoted := make([]string, 0, len(args))
	for i, a := range args {
		quoted = append(quoted, shellArg(a, i == 0))
	}
	return strings.Join(quoted, " ")
}

// shellSafe are the characters an argument may hold unquoted.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"

// shellArg quotes one argument; the first (the command) is quoted when it
// holds a '=', which a shell would take for an assignment.
func shellArg(a string, first bool) string {
	switch {
	case a != "" && strings.Trim(a, shellSafe) == "" && !(first && strings.Contains(a, "=")):
		return a
	case ascii(a) == a && !strings.Contains(a, "\n"):
		return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	var q strings.Builder
	q.WriteString("$'")
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c == '\\' || c == '\'':
			q.WriteByte('\\')
			q.WriteByte(c)
		case c >= 0x20 && c <= 0x7e:
			q.WriteByte(c)
		default:
			fmt.Fprintf(&q, `\x%02x`, c)
		}
	}
	q.WriteString("'")
	return q.String()
}

// writeMDList writes items as a Markdown list, each escaped with md,
// followed by a blank line; nothing for no items.
func writeMDList(b *strings.Builder, items []string) {
	for _, it := range items {
		b.WriteString("- " + md(it) + "\n")
	}
	if len(items) > 0 {
		b.WriteString("\n")
	}
}

// mdTable is a GFM table; every cell is escaped with md when written.
type mdTable struct {
	head  []string
	right []bool // right-align column i
	rows  [][]string
}

func (t *mdTable) add(cells ...string) { t.rows = append(t.rows, cells) }

// write writes the table and a blank line after it. Every row has the
// header's number of cells: missing ones are empty, extra ones dropped.
func (t *mdTable) write(b *strings.Builder) {
	writeMDRow(b, t.head)
	delim := make([]string, len(t.head))
	for i := range delim {
		delim[i] = "---"
		if i < len(t.right) && t.right[i] {
			delim[i] = "---:"
		}
	}
	b.WriteString("| " + strings.Join(delim, " | ") + " |\n")
	for _, row := range t.rows {
		cells := make([]string, len(t.head))
		copy(cells, row)
		writeMDRow(b, cells)
	}
	b.WriteString("\n")
}

func writeMDRow(b *strings.Builder, cells []string) {
	escaped := make([]string, len(cells))
	for i, c := range cells {
		escaped[i] = md(c)
	}
	b.WriteString("| " + strings.Join(escaped, " | ") + " |\n")
}

// mdSpecial are the characters md escapes: each can open or close Markdown
// inline syntax (emphasis, code spans, links, HTML, entities, table cells,
// GFM strikethrough, GitLab's math) or, leading a line, a heading.
const mdSpecial = "\\`*_[]<>|&~#$"

// md makes s literal Markdown text on one line: ASCII only, as the text
// report (anything else is '?', so no name can carry control or bidi
// characters into a ticket), line breaks as spaces, and every character
// of mdSpecial escaped with a backslash, which CommonMark allows before
// any ASCII punctuation. So are the '.' of "www." and the ':' of "://",
// lest GFM's autolinks make a link of a name.
func md(s string) string {
	s = ascii(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n':
			b.WriteByte(' ')
		case strings.IndexByte(mdSpecial, c) >= 0,
			c == '.' && i >= 3 && strings.EqualFold(s[i-3:i], "www"),
			c == ':' && strings.HasPrefix(s[i:], "://"):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
