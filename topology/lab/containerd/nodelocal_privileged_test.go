//go:build linux

package containerd_test

import (
	"net/netip"
	"testing"

	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedRealBridgeNodeLocal traces from a pod the reference bridge
// plugin wired to the node itself, its gateway address on the bridge and
// the node's own IP: the path ends at the bridge the requests went up
// from, the turnaround is the node's own stack (class node), and a drop in
// the node's INPUT chain is lost there, in the request direction.
func TestPrivilegedRealBridgeNodeLocal(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t)
	l := labtest.New(t)
	node := l.Nodes[0]
	network := containerd.NodeBridge(node)
	conf, err := containerd.BridgeConfList(network)
	if err != nil {
		t.Fatal(err)
	}
	d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
	pod := runRealPod(t, d, "web")

	for _, target := range []netip.Addr{network.Gateway, node.UplinkAddr} {
		tr := trace(t, pod.NS, node.NS, target, quick)
		checkPoints(t, tr, topology.TurnNode,
			wantPoint{topology.KindPod, pod.NS}, wantPoint{topology.KindVeth, node.NS}, wantPoint{topology.KindBridge, node.NS})
		checkClasses(t, tr.Report, report.ClassEgress, report.ClassForwarding, report.ClassNode, report.ClassForwarding, report.ClassIngress)
		checkAllSeen(t, tr.Report, quick.count)
		if turn := segment(t, tr.Report, report.ClassNode, report.DirRequest); turn.US == nil || turn.From != turn.To {
			t.Errorf("the node's turnaround %+v is not timed at one point", turn)
		}
	}

	dropEchoRequests(t, node.NSPath, "INPUT")
	checkLossIn(t, trace(t, pod.NS, node.NS, node.UplinkAddr, lossy).Report, lossy, report.ClassNode, report.DirRequest)
}
