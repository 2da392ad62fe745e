package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology"

	"golang.org/x/net/html"
)

func TestPathHTML(t *testing.T) {
	p := flannelPath()
	var b bytes.Buffer
	if err := pathHTML(&b, p, Source{Pod: "default/web-0"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	checkSelfContained(t, page)
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, doc)
	h := hooksOf(doc)
	for _, pt := range p.Points {
		if !h.points[pt.ID] {
			t.Errorf("got no data-point=%q in the page", pt.ID)
		}
	}
	wantSegs := []string{"p0-p1-request", "p1-p2-request", "p2-p3-request", "p3-p4-request", "p4-p4-request",
		"p4-p3-reply", "p3-p2-reply", "p2-p1-reply", "p1-p0-reply"}
	for _, k := range wantSegs {
		if h.segments[k] != 1 {
			t.Errorf("got data-segment=%q %d times, want once", k, h.segments[k])
		}
	}
	for _, w := range []string{
		"path to 10.244.2.2 from pod default/web-0 eth0@net:[4026532301] (10.244.1.2), request direction:",
		`<b>egress</b>`, `<b>ingress</b>`, `<b>network</b> <code>p4 eth0 tx -&gt; rx</code>`,
		"beyond eth0@net:[4026531840] (out and back: wire, remote node, remote pod)",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("got no %q in the page", w)
		}
	}
	if strings.Contains(page, "lost here") || strings.Contains(page, `class="time"`) {
		t.Errorf("got figures on a path without a run")
	}
}

// TestPathHTMLShapes: paths of other shapes render, with their
// turnaround; one without points still names its source and target.
func TestPathHTMLShapes(t *testing.T) {
	flannel := flannelPath()
	node := &topology.Path{Target: netip.MustParseAddr("10.244.1.1"), Source: flannel.Source,
		Points: flannel.Points[:3], Turnaround: topology.TurnNode}
	bare := &topology.Path{Target: netip.MustParseAddr("10.244.2.2"), Source: flannel.Source}
	tests := []struct {
		name string
		p    *topology.Path
		want []string
	}{
		{"node answers", node, []string{`data-segment="p2-p2-request"`, `<b>node</b> <code>p2 cni0 rx -&gt; tx</code>`,
			"the node&#39;s own stack, which answers the probes itself"}},
		{"no points", bare, []string{"path to 10.244.2.2 from eth0@net:[4026532301] (10.244.1.2)", `<b>10.244.2.2</b>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := pathHTML(&b, tt.p, Source{}); err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, b.String())
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("got no %q in the page", w)
				}
			}
		})
	}
	if err := pathHTML(&bytes.Buffer{}, nil, Source{}); err == nil {
		t.Errorf("got no error for no path, want one")
	}
}
