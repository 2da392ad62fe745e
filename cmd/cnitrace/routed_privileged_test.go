package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedTraceRoutedVeth traces across the routed (Calico-style)
// lab: discovery must find the pod, its host veth, the overlay and the
// uplink by kind and netns, with no bridge on the path and nothing
// leaning on names, and every probe must be matched at every point in both
// directions.
func TestPrivilegedTraceRoutedVeth(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted})
	r := traceLab(t, l, "--count", "30", "--interval", "10ms")

	if r.Probes.Sent != 30 || r.Probes.Received != 30 {
		t.Fatalf("got %d sent, %d received; want 30, 30", r.Probes.Sent, r.Probes.Received)
	}
	checkRoutedPoints(t, r)
	if got, want := len(r.Segments), 2*len(r.Points)-1; got != want {
		t.Fatalf("got %d segments, want %d", got, want)
	}
	for _, s := range r.Segments {
		if s.Seen != 30 || s.Lost != 0 {
			t.Errorf("segment %s->%s (%s): seen %d lost %d, want 30 and 0", s.From, s.To, s.Direction, s.Seen, s.Lost)
		}
	}

	// 2 ms on the wire between the nodes lands in the network segment.
	// The wire goes in clean first, and a trace resolves the uplinks'
	// neighbours through it, so "before" and "after" cross the same wire.
	if err := l.SetFaults(t.Context(), lab.Faults{Wire: true}); err != nil {
		t.Fatal(err)
	}
	before := traceLab(t, l, "--count", "30", "--interval", "20ms")
	delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
	if err := l.SetFaults(t.Context(), delay); err != nil {
		t.Fatal(err)
	}
	checkMoved(t, before, traceLab(t, l, "--count", "30", "--interval", "20ms"), "network", 2*time.Millisecond)
}

// checkRoutedPoints checks the points are exactly pod, veth, vxlan, uplink,
// the pod's in its own netns and the others together in the node's.
func checkRoutedPoints(t *testing.T, r jsonReport) {
	t.Helper()
	var kinds []string
	for _, p := range r.Points {
		kinds = append(kinds, p.Kind)
	}
	if want := []string{"pod", "veth", "vxlan", "uplink"}; !slices.Equal(kinds, want) {
		t.Fatalf("got point kinds %v, want %v", kinds, want)
	}
	podNS, nodeNS := r.Points[0].NetNS, r.Points[1].NetNS
	for _, p := range r.Points[1:] {
		if p.NetNS != nodeNS || p.NetNS == podNS {
			t.Errorf("point %s (%s) is in %s, want the node netns %s, not the pod's %s", p.ID, p.Kind, p.NetNS, nodeNS, podNS)
		}
	}
}

// TestPrivilegedRoutedForwardLossLocated drops 30% of the probes node 1 of
// the routed lab forwards from the pod's veth to the overlay (requests), or
// of the replies it forwards back (lab.Faults picks the routed topology's
// devices), and checks the report puts every loss on that segment between
// the veth and the vxlan points, in that direction, and none anywhere else.
func TestPrivilegedRoutedForwardLossLocated(t *testing.T) {
	tests := []struct {
		name   string
		faults lab.Faults
		span   string // direction fromKind->toKind
	}{
		{"request", lab.Faults{ForwardRequestLoss: 0.3}, "request veth->vxlan"},
		{"reply", lab.Faults{ForwardReplyLoss: 0.3}, "reply vxlan->veth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted, Faults: tt.faults})
			args := append([]string{"trace", "--format", "json", "--count", "60", "--interval", "5ms", "--timeout", "300ms"}, l.TraceArgs()...)
			code, stdout, stderr := runCLI(t, args...)
			if code != cli.ExitFinding {
				t.Fatalf("got exit %d, want %d (probes lost); stderr:\n%s", code, cli.ExitFinding, stderr)
			}
			r := decodeReport(t, stdout)
			checkRoutedPoints(t, r)
			checkLossOnlyOn(t, r, tt.span)
		})
	}
}

// checkLossOnlyOn checks that r lost about 30% of 60 probes, all on the
// segment span ("direction fromKind->toKind"), and that the verdict names
// that segment by the interfaces the report found, whatever they are called.
func checkLossOnlyOn(t *testing.T, r jsonReport, span string) {
	t.Helper()
	kind := map[string]string{}
	iface := map[string]string{}
	for _, p := range r.Points {
		kind[p.ID], iface[p.Kind] = p.Kind, p.Interface
	}
	lost := r.Probes.Sent - r.Probes.Received
	if lost < 6 || lost > 36 { // 30% of 60 is 18; binomial bounds far outside 3 sigma
		t.Errorf("got %d of 60 lost, want about 18", lost)
	}
	var from, to string
	for _, s := range r.Segments {
		got := s.Direction + " " + kind[s.From] + "->" + kind[s.To]
		if got == span {
			from, to = iface[kind[s.From]], iface[kind[s.To]]
			if s.Lost != lost {
				t.Errorf("%s: lost %d, want all %d losses", got, s.Lost, lost)
			}
			continue
		}
		if s.Lost != 0 {
			t.Errorf("%s: lost %d, want 0: the drop rule is on %s", got, s.Lost, span)
		}
	}
	if from == "" {
		t.Fatalf("no segment %s in the report", span)
	}
	dir, _, _ := strings.Cut(span, " ")
	if v := r.Verdict.Text; !strings.Contains(v, "lost in forwarding between "+from+"@") ||
		!strings.Contains(v, "and "+to+"@") || !strings.Contains(v, "("+dir+")") {
		t.Errorf("verdict %q does not name the forwarding segment %s -> %s (%s)", v, from, to, dir)
	}
}
