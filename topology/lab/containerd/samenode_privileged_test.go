//go:build linux

package containerd_test

import (
	"testing"

	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedRealBridgeSameNode traces between two pod sandboxes the
// reference bridge plugin put on one node's bridge: the bridge forwards
// port to port at layer 2 and its own device never sees the frames, so the
// path is the pod, its veth and the peer's veth, and the turnaround the
// peer. A drop in the peer's INPUT chain is lost in the peer; one in the
// node's FORWARD chain (which sees bridged frames with br_netfilter)
// between the two veths, both in the request direction.
func TestPrivilegedRealBridgeSameNode(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t)
	l := labtest.New(t)
	node := l.Nodes[0]
	conf, err := containerd.BridgeConfList(containerd.NodeBridge(node))
	if err != nil {
		t.Fatal(err)
	}
	d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
	a, b := runRealPod(t, d, "a"), runRealPod(t, d, "b")
	veth := wantPoint{topology.KindVeth, node.NS}

	tr := trace(t, a.NS, node.NS, b.Addr, quick)
	checkPoints(t, tr, topology.TurnPeer, wantPoint{topology.KindPod, a.NS}, veth, veth)
	if p := tr.Path.Points; p[1].Ifindex == p[2].Ifindex {
		t.Errorf("the pod's host veth and the peer's are one interface: %s", tr.Path)
	}
	checkClasses(t, tr.Report, report.ClassEgress, report.ClassForwarding, report.ClassPeer, report.ClassForwarding, report.ClassIngress)
	checkAllSeen(t, tr.Report, quick.count)

	dropEchoRequests(t, b.NSPath, "INPUT")
	checkLossIn(t, trace(t, a.NS, node.NS, b.Addr, lossy).Report, lossy, report.ClassPeer, report.DirRequest)
	flushEchoDrops(t, b.NSPath, "INPUT")

	dropEchoRequests(t, node.NSPath, "FORWARD")
	checkLossIn(t, trace(t, a.NS, node.NS, b.Addr, lossy).Report, lossy, report.ClassForwarding, report.DirRequest)
}
