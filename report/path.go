package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cnitrace/cnitrace/topology"
)

// RenderPath writes a discovered path, as cnitrace path prints it, to w in
// format f: text, a table under a line naming the source; JSON, the
// topology.Path with src's pod in its source (source.pod, .sandbox_id,
// .host_network, as the report names it) when src names one; Markdown, the
// same table for a ticket; HTML, one self-contained page. Only src's pod
// fields are used: the rest of the source is the path's.
func RenderPath(w io.Writer, p *topology.Path, src Source, f Format) error {
	if p == nil {
		return errors.New("render path: no path")
	}
	var err error
	switch f {
	case FormatText:
		err = renderPathText(w, p, src)
	case FormatJSON:
		err = renderPathJSON(w, p, src)
	case FormatMarkdown:
		err = renderPathMarkdown(w, p, src)
	case FormatHTML:
		return pathHTML(w, p, src)
	default:
		return fmt.Errorf("render path: unknown output format %v", f)
	}
	if err != nil {
		return fmt.Errorf("render path as %v: %w", f, err)
	}
	return nil
}

// pathHeadline names the path's target and source, src's pod first when
// it names one: "path to 10.244.2.2 from eth0@net:[4026532301]
// (10.244.1.2), request direction:".
func pathHeadline(p *topology.Path, src Source) string {
	from := fmt.Sprintf("%s@%s (%s)", p.Source.Interface, p.Source.NetNS, p.Source.Addr)
	if src.Pod != "" {
		from = podName(src) + " " + from
	}
	return fmt.Sprintf("path to %s from %s, request direction:", p.Target, from)
}

// translatedText says to what the node DNATs the target; "" when it does
// not.
func translatedText(p *topology.Path) string {
	if !p.Translated.IsValid() {
		return ""
	}
	return fmt.Sprintf("(the node translates %s to %s: DNAT, found in its conntrack table)", p.Target, p.Translated)
}

// turnaroundText says what answers beyond the last point; "" for a path
// without points.
func turnaroundText(p *topology.Path) string {
	n := len(p.Points)
	if n == 0 {
		return ""
	}
	turn := p.TurnaroundOrInferred()
	return fmt.Sprintf("beyond %s the probes turn around in %s%s", p.Points[n-1].ID, turn, turnaroundWhat(turn))
}

// turnaroundWhat says, after its class, what a turnaround holds; an
// unknown class is printed as it is, with nothing after it.
func turnaroundWhat(t topology.Turnaround) string {
	switch t {
	case topology.TurnNetwork:
		return " (the wire and whatever answers beyond it)"
	case topology.TurnPeer:
		return " (another pod on this node answers)"
	case topology.TurnNode:
		return " (the node's own stack answers)"
	}
	return ""
}

// renderPathText writes the points as a table under a line naming the
// source.
func renderPathText(w io.Writer, p *topology.Path, src Source) error {
	var b strings.Builder
	b.WriteString(pathHeadline(p, src) + "\n")
	if s := translatedText(p); s != "" {
		b.WriteString(s + "\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINTERFACE\tNETNS\tIFINDEX\tKIND\tREQUEST")
	for _, pt := range p.Points {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", pt.ID, pt.Interface, pt.NetNS, pt.Ifindex, pt.Kind, pt.RequestDir)
	}
	tw.Flush() // into a strings.Builder: cannot fail
	if s := turnaroundText(p); s != "" {
		b.WriteString(s + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// podPath is the path's JSON with the pod in its source, as the trace
// report names it (source.pod, .sandbox_id, .host_network): the outer
// source hides the embedded path's.
type podPath struct {
	*topology.Path
	Source struct {
		topology.Source
		Pod         string `json:"pod"`
		SandboxID   string `json:"sandbox_id"`
		HostNetwork bool   `json:"host_network,omitempty"`
	} `json:"source"`
}

// renderPathJSON writes the topology.Path as it is or, when src names a
// pod, with the pod in its source; indented, as the report.
func renderPathJSON(w io.Writer, p *topology.Path, src Source) error {
	var v any = p
	if src.Pod != "" {
		pp := podPath{Path: p}
		pp.Source.Source = p.Source
		pp.Source.Pod, pp.Source.SandboxID, pp.Source.HostNetwork = src.Pod, src.SandboxID, src.HostNetwork
		v = pp
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// renderPathMarkdown writes the path for a ticket: the text's sentences
// around the report's points table.
func renderPathMarkdown(w io.Writer, p *topology.Path, src Source) error {
	var b strings.Builder
	b.WriteString(md(pathHeadline(p, src)) + "\n\n")
	if s := translatedText(p); s != "" {
		b.WriteString(md(s) + "\n\n")
	}
	rows := make([]pointRow, 0, len(p.Points))
	for _, pt := range p.Points {
		rows = append(rows, pointRow{pt.ID, pt.Interface, pt.NetNS, string(pt.Kind), string(pt.RequestDir), pt.Ifindex})
	}
	writeMDPoints(&b, rows)
	if s := turnaroundText(p); s != "" {
		b.WriteString(md(s) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
