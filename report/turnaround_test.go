package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// nodeLocalPath is a pod probing its bridge's gateway address: the
// requests end at the bridge, where the node's own stack answers them.
func nodeLocalPath() *topology.Path {
	p := flannelPath()
	p.Target = netip.MustParseAddr("10.244.1.1")
	p.Points = p.Points[:3]
	p.Turnaround = topology.TurnNode
	return p
}

// TestTurnaroundClass: the turnaround segment takes its class from what the
// path says answers beyond its last point; a path that does not say is
// read as paths were before it could (a last veth is a peer, anything
// else the network), and a turnaround this version does not know is its
// own class.
func TestTurnaroundClass(t *testing.T) {
	withTurn := func(p *topology.Path, turn topology.Turnaround) *topology.Path { p.Turnaround = turn; return p }
	peerPath := func() *topology.Path { // pod, its veth, the peer's veth
		p := flannelPath()
		p.Points = append(p.Points[:2:2], topology.Point{ID: "p2", Interface: "veth9", Ifindex: 9, NetNS: hostNS, Kind: topology.KindVeth, RequestDir: topology.TX})
		return p
	}
	for _, tt := range []struct {
		name string
		path *topology.Path
		want string
	}{
		{"node", nodeLocalPath(), ClassNode},
		{"peer", withTurn(peerPath(), topology.TurnPeer), ClassPeer},
		{"network", withTurn(flannelPath(), topology.TurnNetwork), ClassNetwork},
		{"unset, last point a veth", peerPath(), ClassPeer},
		{"unset, last point an uplink", flannelPath(), ClassNetwork},
		{"a macvlan's sibling: the pod's interface alone", withTurn(&topology.Path{Target: netip.MustParseAddr("192.168.255.17"), Source: flannelPath().Source, Points: flannelPath().Points[:1]}, topology.TurnPeer), ClassPeer},
		{"unknown", withTurn(flannelPath(), "satellite"), "satellite"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.path.Points)
			delays := make([]time.Duration, 2*n-1)
			for i := range delays {
				delays[i] = 10 * time.Microsecond
			}
			delays[n-1] = 50 * time.Microsecond
			got := run{path: tt.path, n: 20, delays: delays}.correlate(t)
			turn := got.Segments[n-1]
			if turn.Class != tt.want || turn.From != turn.To || turn.From != tt.path.Points[n-1].ID {
				t.Errorf("turnaround segment %+v, want class %q at %s", turn, tt.want, tt.path.Points[n-1].ID)
			}
			for i, s := range got.Segments {
				if i != n-1 && s.Class == tt.want && tt.want != ClassForwarding {
					t.Errorf("segment %d (%s -> %s) has the turnaround's class %q", i, s.From, s.To, s.Class)
				}
			}
		})
	}
}

// TestNodeLocalText: the node's own turnaround is named by how the
// requests cross its point (they end there: rx -> tx), and the verdict
// says the node answers itself.
func TestNodeLocalText(t *testing.T) {
	r := run{path: nodeLocalPath(), n: 20, delays: us(5.4, 3.1, 20, 1.6, 0.7)}
	var b bytes.Buffer
	res := r.correlate(t)
	if err := Render(&b, res, FormatText); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"request  node        p2 cni0 rx -> tx",
		"node beyond cni0@net:[4026531840] (out and back: the node's own stack, which answers the probes itself)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestMergedTurnaroundText: when the bridge's RX stamp of a node-local
// request was inherited from the veth, the node's turnaround is timed from
// the veth; the verdict still names it as the node beyond the bridge, and
// says where it was timed from.
func TestMergedTurnaroundText(t *testing.T) {
	jitter := func(seq, s int) time.Duration {
		if s == 2 {
			return time.Duration(seq%5) * 4 * time.Microsecond
		}
		return 0
	}
	r := run{path: nodeLocalPath(), n: 20, delays: us(5.4, 3.1, 20, 1.6, 0.7), jitter: jitter, inherit: map[int]bool{1: true}}
	v := r.correlate(t).Verdict
	want := "is in node beyond cni0@net:[4026531840] (out and back: the node's own stack, which answers the probes itself), timed from veth3f2a9c1d@net:[4026531840] (the RX stamps since were inherited)"
	if !strings.Contains(v.Text, want) || v.Class != ClassNode {
		t.Errorf("got verdict %+v, want class node and text containing %q", v, want)
	}
}
