package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedForwardRequestLossLocated drops 30% of the probes node 1
// forwards from its bridge to its overlay, and checks the report puts every
// loss on that segment, in the request direction, and says so in the verdict.
func TestPrivilegedForwardRequestLossLocated(t *testing.T) {
	l := labtest.New(t)
	rule := []string{"FORWARD", "-i", lab.BridgeName, "-o", lab.VXLANName, "-p", "icmp",
		"-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"}
	if out, err := l.Command(context.Background(), l.Nodes[0].NSPath, "iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	args := append([]string{"trace", "--format", "json", "--count", "60", "--interval", "5ms", "--timeout", "300ms"}, l.TraceArgs()...)
	code, stdout, stderr := runCLI(t, args...)
	if code != cli.ExitFinding {
		t.Fatalf("got exit %d, want %d (probes lost); stderr:\n%s", code, cli.ExitFinding, stderr)
	}
	r := decodeReport(t, stdout)
	kind := map[string]string{}
	for _, p := range r.Points {
		kind[p.ID] = p.Kind
	}
	lost := r.Probes.Sent - r.Probes.Received
	if lost < 6 || lost > 36 { // 30% of 60 is 18; binomial bounds far outside 3 sigma
		t.Errorf("got %d of 60 lost, want about 18", lost)
	}
	for _, s := range r.Segments {
		span := s.Direction + " " + kind[s.From] + "->" + kind[s.To]
		if span == "request bridge->vxlan" {
			if s.Lost != lost {
				t.Errorf("%s: lost %d, want all %d losses", span, s.Lost, lost)
			}
			continue
		}
		if s.Lost != 0 {
			t.Errorf("%s: lost %d, want 0: the drop rule is between the bridge and the overlay", span, s.Lost)
		}
	}
	if v := r.Verdict.Text; !strings.Contains(v, "lost in forwarding between cni0") || !strings.Contains(v, "(request)") {
		t.Errorf("verdict %q does not name the forwarding request segment", v)
	}
}

// TestPrivilegedNetworkDelayLocated puts a 2 ms delay on the wire between
// the nodes (request direction) and checks that only the network segment
// moves, by about 2 ms. The baseline already has the wire in place with no
// delay, so the delay line's own cost is not counted as the injected delay.
func TestPrivilegedNetworkDelayLocated(t *testing.T) {
	l := labtest.New(t)
	ctx := context.Background()
	if err := l.SetFaults(ctx, lab.Faults{Wire: true}); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--count", "30", "--interval", "20ms"}
	before := traceLab(t, l, flags...)
	delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
	if err := l.SetFaults(ctx, delay); err != nil {
		t.Fatal(err)
	}
	after := traceLab(t, l, flags...)
	checkMoved(t, before, after, "network", 2*time.Millisecond)
	if before.Probes.Received != 30 || after.Probes.Received != 30 {
		t.Errorf("answered %d and %d of 30, want all", before.Probes.Received, after.Probes.Received)
	}
}
