package report

import (
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/capture"
)

// TestCorrelateUnknown: probe 3 was last seen at cni0 (request) and never
// answered. Whether that is a loss between cni0 and flannel.1 depends on
// whether the capture at flannel.1 could have missed it.
func TestCorrelateUnknown(t *testing.T) {
	tests := []struct {
		name          string
		lostIn        map[int]int
		stats         []capture.PointStats
		lost, unknown map[int]int // segment -> count; others 0
		text          string      // verdict prefix
	}{
		{"no stats: lost", map[int]int{3: segBridgeVXLAN}, nil,
			map[int]int{segBridgeVXLAN: 1}, nil,
			"1 of 10 probes (10%) lost in forwarding between cni0@net:[4026531840] and flannel.1@net:[4026531840] (request); "},
		{"drops at the end: unknown", map[int]int{3: segBridgeVXLAN}, []capture.PointStats{{Point: "p3", Packets: 20, Drops: 2}},
			nil, map[int]int{segBridgeVXLAN: 1},
			"1 unanswered probe (10%) not located: the capture at flannel.1@net:[4026531840] dropped packets where it went missing; the largest share"},
		{"freezes at the end: unknown", map[int]int{3: segBridgeVXLAN}, []capture.PointStats{{Point: "p3", Packets: 20, Freezes: 1}},
			nil, map[int]int{segBridgeVXLAN: 1}, "1 unanswered probe (10%) not located"},
		{"split counters add up", map[int]int{3: segBridgeVXLAN}, []capture.PointStats{{Point: "p3", Packets: 20}, {Point: "p3", Drops: 1}},
			nil, map[int]int{segBridgeVXLAN: 1}, "1 unanswered probe (10%) not located"},
		{"drops at the start, where it was seen: lost", map[int]int{3: segBridgeVXLAN}, []capture.PointStats{{Point: "p2", Drops: 5}},
			map[int]int{segBridgeVXLAN: 1}, nil, "1 of 10 probes (10%) lost in forwarding between cni0"},
		{"drops further on: lost", map[int]int{3: segBridgeVXLAN}, []capture.PointStats{{Point: "p4", Drops: 5}, {Point: "p0", Drops: 1}},
			map[int]int{segBridgeVXLAN: 1}, nil, "1 of 10 probes (10%) lost in forwarding between cni0"},
		{"drops at an unknown point: lost", map[int]int{3: segBridgeVXLAN}, []capture.PointStats{{Point: "px", Drops: 5}},
			map[int]int{segBridgeVXLAN: 1}, nil, "1 of 10 probes (10%) lost in forwarding between cni0"},
		{"a loss and two unknowns at one capture", map[int]int{3: segBridgeVXLAN, 5: segNetwork, 6: segUplinkVXLAN}, []capture.PointStats{{Point: "p3", Drops: 1}},
			map[int]int{segNetwork: 1}, map[int]int{segBridgeVXLAN: 1, segUplinkVXLAN: 1},
			"1 of 10 probes (10%) lost in network beyond eth0@net:[4026531840] (out and back: wire, remote node, remote pod); " +
				"2 unanswered probes (20%) not located: the capture at flannel.1@net:[4026531840] dropped packets where they went missing; "},
		{"unknowns at two captures", map[int]int{3: segBridgeVXLAN, 6: segEgress}, []capture.PointStats{{Point: "p3", Drops: 1}, {Point: "p1", Drops: 4}},
			nil, map[int]int{segBridgeVXLAN: 1, segEgress: 1},
			"2 unanswered probes (20%) not located: the captures at veth3f2a9c1d@net:[4026531840], flannel.1@net:[4026531840] dropped packets where they went missing; "},
		{"drops at the end of the network segment", map[int]int{5: segNetwork}, []capture.PointStats{{Point: "p4", Drops: 1}},
			nil, map[int]int{segNetwork: 1}, "1 unanswered probe (10%) not located: the capture at eth0@net:[4026531840]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run{n: 10, delays: designDelays(), lostIn: tt.lostIn, stats: tt.stats}.correlate(t)
			wantUnknown := 0
			for i, s := range r.Segments {
				if s.Lost != tt.lost[i] || s.Unknown != tt.unknown[i] {
					t.Errorf("segment %d (%s->%s %s): got lost %d unknown %d, want lost %d unknown %d",
						i, s.From, s.To, s.Direction, s.Lost, s.Unknown, tt.lost[i], tt.unknown[i])
				}
				wantUnknown += tt.unknown[i]
			}
			v := r.Verdict
			if !strings.HasPrefix(v.Text, tt.text) {
				t.Errorf("got verdict %q, want it to start with %q", v.Text, tt.text)
			}
			if v.Unknown != wantUnknown {
				t.Errorf("got verdict unknown %d, want %d", v.Unknown, wantUnknown)
			}
			if (v.Loss != nil) != (len(tt.lost) > 0) {
				t.Errorf("got verdict loss %+v, want one: %v", v.Loss, len(tt.lost) > 0)
			}
		})
	}
}

// TestPointCapture: the capture's counters are attached to their points,
// and a point the capture reported nothing for has none.
func TestPointCapture(t *testing.T) {
	stats := []capture.PointStats{{Point: "p1", Packets: 40, Undecodable: 1}, {Point: "p3", Packets: 38, Drops: 2, Freezes: 1}}
	r := run{n: 20, delays: designDelays(), stats: stats}.correlate(t)
	want := map[string]*PointCapture{
		"p1": {Packets: 40, Undecodable: 1},
		"p3": {Packets: 38, Drops: 2, Freezes: 1},
	}
	for _, p := range r.Points {
		w := want[p.ID]
		if (p.Capture == nil) != (w == nil) || (w != nil && *p.Capture != *w) {
			t.Errorf("point %s: got capture %+v, want %+v", p.ID, p.Capture, w)
		}
		if got := p.Dropped(); got != (p.ID == "p3") {
			t.Errorf("point %s: got dropped %v, want %v", p.ID, got, p.ID == "p3")
		}
	}
}
