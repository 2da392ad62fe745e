package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedLossOnEveryLayout injects 30% loss at each class of hook
// the lab offers (the pod's own stack, node 1's FORWARD chain, the wire),
// in each direction, on each layout a pod on node 1 can trace (the other
// node's pod and its own sibling, on both topologies), and checks that
// every loss is charged to the one place the hook is, named by the kinds
// of its ends and its direction, and that the verdict names the same.
func TestPrivilegedLossOnEveryLayout(t *testing.T) {
	type hook struct {
		name   string
		faults lab.Faults
	}
	req, rep := lab.Impairment{Loss: 0.3}, lab.Impairment{Loss: 0.3}
	hooks := []hook{
		{"pod-request", lab.Faults{PodRequestLoss: 0.3}},
		{"pod-reply", lab.Faults{PodReplyLoss: 0.3}},
		{"forward-request", lab.Faults{ForwardRequestLoss: 0.3}},
		{"forward-reply", lab.Faults{ForwardReplyLoss: 0.3}},
		{"network-request", lab.Faults{Network: lab.Network{Request: req}}},
		{"network-reply", lab.Faults{Network: lab.Network{Reply: rep}}},
	}
	// where[layout][hook] is where the losses must land: "stack DIR" or
	// "DIR fromKind->toKind"; no entry: the hook is not on that path.
	where := map[string]map[string]string{
		"flannel/other-node": {
			"pod-request": "stack request", "pod-reply": "stack reply",
			"forward-request": "request bridge->vxlan", "forward-reply": "reply vxlan->bridge",
			"network-request": "request uplink->uplink", "network-reply": "request uplink->uplink",
		},
		"routed/other-node": {
			"pod-request": "stack request", "pod-reply": "stack reply",
			"forward-request": "request veth->vxlan", "forward-reply": "reply vxlan->veth",
			"network-request": "request uplink->uplink", "network-reply": "request uplink->uplink",
		},
		// A bridge forwards between its ports past FORWARD unless
		// br_netfilter is loaded, which varies by host: no forward hook.
		"flannel/same-node": {"pod-request": "stack request", "pod-reply": "stack reply"},
		"routed/same-node": {
			"pod-request": "stack request", "pod-reply": "stack reply",
			"forward-request": "request veth->veth", "forward-reply": "reply veth->veth",
		},
	}
	for _, topo := range lab.Layouts {
		t.Run(string(topo), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: topo})
			n1 := l.Nodes[0]
			targets := []struct {
				name string
				addr netip.Addr
			}{{"other-node", l.Nodes[1].Pod.Addr}, {"same-node", n1.Sibling.Addr}}
			for _, h := range hooks {
				if h.faults.Network != (lab.Network{}) && l.Wire == nil {
					// The wire's loss drops ARP too: resolve the nodes'
					// uplinks through a clean wire first, or a lost
					// request stalls every probe for the 1 s retransmit.
					if err := l.SetFaults(t.Context(), lab.Faults{Wire: true}); err != nil {
						t.Fatalf("put the wire in: %v", err)
					}
					traceFrom(t, l, n1.Pod.NSPath, l.Nodes[1].Pod.Addr, cli.ExitOK, "--count", "3", "--interval", "10ms")
				}
				if err := l.SetFaults(t.Context(), h.faults); err != nil {
					t.Fatalf("set %s: %v", h.name, err)
				}
				for _, tg := range targets {
					want, ok := where[string(topo)+"/"+tg.name][h.name]
					if !ok {
						continue
					}
					t.Run(tg.name+"/"+h.name, func(t *testing.T) {
						r := traceFrom(t, l, n1.Pod.NSPath, tg.addr, cli.ExitFinding, "--count", "60", "--interval", "5ms", "--timeout", "300ms")
						checkLossAt(t, r, 60, want)
					})
				}
			}
		})
	}
}

// checkLossAt checks that about 30% of n probes were lost, every one at
// the place want ("stack DIR" or "DIR fromKind->toKind"), and that the
// verdict's loss names that place.
func checkLossAt(t *testing.T, r jsonReport, n int, want string) {
	t.Helper()
	lost := r.Probes.Sent - r.Probes.Received
	if lost < n/10 || lost > n*6/10 {
		t.Errorf("lost %d of %d, want about 30%%", lost, n)
	}
	kind := map[string]string{"socket": "socket"}
	for _, p := range r.Points {
		kind[p.ID] = p.Kind
	}
	got := map[string]int{}
	if r.Stack.Request > 0 {
		got["stack request"] += r.Stack.Request
	}
	if r.Stack.Reply > 0 {
		got["stack reply"] += r.Stack.Reply
	}
	for _, s := range r.Segments {
		if s.Lost > 0 {
			got[fmt.Sprintf("%s %s->%s", s.Direction, kind[s.From], kind[s.To])] += s.Lost
		}
	}
	if len(got) != 1 || got[want] != lost {
		t.Errorf("losses by place %v (of %d lost), want all at %q", got, lost, want)
	}
	v := r.Verdict.Loss
	if v == nil {
		t.Fatalf("no loss in the verdict %q, want %q", r.Verdict.Text, want)
	}
	place := fmt.Sprintf("%s %s->%s", v.Direction, kind[v.From], kind[v.To])
	if v.From == "socket" || v.To == "socket" {
		place = "stack " + v.Direction
	}
	if place != want || v.Lost != lost {
		t.Errorf("verdict loss %+v (%s), want %d at %q; text %q", *v, place, lost, want, r.Verdict.Text)
	}
}
