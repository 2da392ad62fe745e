package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/cnitrace/cnitrace/topology"
)

// htmlPathPage is the page of cnitrace path --format html: the chain of
// points alone.
type htmlPathPage struct {
	Title, Headline string
	Chain           htmlChain
}

// pathHTML writes the path for cnitrace path --format html: the chain of
// points with the segment classes between them, under the line the text
// prints; only src's pod fields are used, as in RenderPath.
func pathHTML(w io.Writer, p *topology.Path, src Source) error {
	if p == nil {
		return fmt.Errorf("render path as html: no path")
	}
	c := htmlChainOf(htmlPathResult(p, src), false)
	if s := translatedText(p); s != "" {
		c.NAT = []string{s}
	}
	head := pathHeadline(p, src)
	return htmlExecute(w, "path", htmlPathPage{Title: "cnitrace " + strings.TrimSuffix(head, ", request direction:"), Headline: head, Chain: c}, "render path as html")
}

// htmlPathResult is what a Result would say of p before any probe: its
// source (with src's pod), its points, and its segments with their
// classes.
func htmlPathResult(p *topology.Path, src Source) *Result {
	source := Source{NetNS: p.Source.NetNS, Interface: p.Source.Interface, Addr: addrString(p.Source.Addr),
		Pod: src.Pod, SandboxID: src.SandboxID, HostNetwork: src.HostNetwork}
	pts := points(p, nil)
	steps := buildSteps(p, pts)
	turn := turnClass(p.TurnaroundOrInferred())
	var segs []Segment
	for i := 0; i+1 < len(steps); i++ {
		segs = append(segs, describe(steps, i, turn))
	}
	return &Result{Target: addrString(p.Target), Translated: addrString(p.Translated), Source: source, Points: pts, Segments: segs}
}
