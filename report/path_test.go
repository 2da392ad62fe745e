package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
)

// pathFixtures are paths as discovery returns them, with the source a
// --pod run names: a flannel pod to a Service's backend, the same path
// read as recorded before turnarounds were set, a hostNetwork pod
// answered by the node, and a path without points.
func pathFixtures() []pathFixture {

	points := []topology.Point{
		{ID: "p0", Interface: "eth0", Ifindex: 2, NetNS: podNS, Kind: topology.KindPod, RequestDir: topology.TX},
		{ID: "p1", Interface: "veth3f2a9c1d", Ifindex: 7, NetNS: hostNS, Kind: topology.KindVeth, RequestDir: topology.RX},
		{ID: "p2", Interface: "cni0", Ifindex: 5, NetNS: hostNS, Kind: topology.KindBridge, RequestDir: topology.RX},
		{ID: "p3", Interface: "flannel.1", Ifindex: 4, NetNS: hostNS, Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: 8472},
		{ID: "p4", Interface: "eth0", Ifindex: 2, NetNS: hostNS, Kind: topology.KindUplink, RequestDir: topology.TX},
	}
	source := topology.Source{NetNS: podNS, Interface: "eth0", Addr: netip.MustParseAddr("10.244.1.2")}
	pod := Source{Pod: "default/web-0", SandboxID: "8d41e7c0a9f3b2c1d0e5f6a7b8c9d0e1"}
	return []pathFixture{
		{"flannel", &topology.Path{Target: netip.MustParseAddr("10.96.0.10"), Translated: netip.MustParseAddr("10.244.2.2"),
			Source: source, Points: points, Turnaround: topology.TurnNetwork}, pod},
		{"recorded", &topology.Path{Target: netip.MustParseAddr("10.244.1.3"), Source: source, Points: points[:2]}, Source{}},
		{"hostNetwork", &topology.Path{Target: netip.MustParseAddr("10.244.1.1"), Source: topology.Source{NetNS: hostNS, Interface: "cni0", Addr: netip.MustParseAddr("10.244.1.1")},
			Points: points[2:3], Turnaround: topology.TurnNode}, Source{Pod: "kube-system/kube-proxy-x7k2p", SandboxID: "f914fe16d2dd9", HostNetwork: true}},
		{"unknown turnaround", &topology.Path{Target: netip.MustParseAddr("fd00::2"), Source: topology.Source{NetNS: podNS, Interface: "eth0", Addr: netip.MustParseAddr("fd00::1")},
			Points: points[:1], Turnaround: "wormhole"}, Source{}},
		{"no points", &topology.Path{Target: netip.MustParseAddr("10.244.2.2"), Source: source}, Source{}},
	}
}

type pathFixture struct {
	name string
	path *topology.Path
	src  Source
}

// pathGolden is the golden file of the flannel path in format f. The text
// and JSON ones were written by cnitrace path before RenderPath existed,
// which prints them the same, byte for byte.
func pathGolden(f Format) string { return "../testdata/path-flannel.golden" + f.Ext() }

func TestRenderPathGolden(t *testing.T) {
	fx := pathFixtures()[0]
	for _, f := range Formats() {
		t.Run(f.String(), func(t *testing.T) {
			var b bytes.Buffer
			if err := RenderPath(&b, fx.path, fx.src, f); err != nil {
				t.Fatal(err)
			}
			golden(t, pathGolden(f), b.Bytes())
		})
	}
}

// TestRenderPathMarkdown: every path's Markdown holds one points table,
// one row per point, that GFM parses with all its cells, and no HTML.
func TestRenderPathMarkdown(t *testing.T) {
	hostile := pathFixtures()[0]
	hostile.name = "hostile names"
	hostile.path.Points[1].Interface, hostile.path.Points[2].NetNS = "v|eth<script>", "`net`|x"
	for _, fx := range append(pathFixtures(), hostile) {
		t.Run(fx.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := RenderPath(&b, fx.path, fx.src, FormatMarkdown); err != nil {
				t.Fatal(err)
			}
			tables, htmls, other := parseMD(t, b.Bytes())
			checkTables(t, b.Bytes(), tables)
			if len(tables) != 1 || len(tables[0].rows) != len(fx.path.Points)+1 {
				t.Fatalf("got tables %q, want one with a row per point", tables)
			}
			for i, p := range fx.path.Points {
				if got := tables[0].rows[i+1][1]; got != ascii(p.Interface) {
					t.Errorf("got interface %q, want %q", got, p.Interface)
				}
			}
			if len(htmls) > 0 || len(other) > 0 {
				t.Errorf("got HTML %q and %v, want none", htmls, other)
			}
			if !strings.Contains(b.String(), md(pathHeadline(fx.path, fx.src))) {
				t.Errorf("got\n%s\nwant the headline first", b.String())
			}
		})
	}
}

func TestRenderPathErrors(t *testing.T) {
	if err := RenderPath(&bytes.Buffer{}, nil, Source{}, FormatText); err == nil {
		t.Errorf("got no error for a nil path, want one")
	}
	if err := RenderPath(&bytes.Buffer{}, pathFixtures()[0].path, Source{}, Format(9)); err == nil {
		t.Errorf("got no error for Format(9), want one")
	}
}
