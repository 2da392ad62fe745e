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

// TestPrivilegedRealPTP traces from a pod the reference ptp plugin wired
// (a routed veth; every host-side veth carries the same gateway address):
// to another ptp pod on the node, which is a peer behind its host veth and
// not an uplink; to the gateway and to the node's IP, which the node
// answers itself at the pod's host veth; and to node 2's pod across the
// lab's VXLAN. Drops in the peer's INPUT, the node's FORWARD and the
// node's INPUT are each lost in their segment and direction.
func TestPrivilegedRealPTP(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t)
	l := labtest.New(t)
	node := l.Nodes[0]
	network := containerd.NodePTP(node)
	conf, err := containerd.PTPConfList(network)
	if err != nil {
		t.Fatal(err)
	}
	d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
	a, b := runRealPod(t, d, "a"), runRealPod(t, d, "b")
	podA, veth := wantPoint{topology.KindPod, a.NS}, wantPoint{topology.KindVeth, node.NS}

	t.Run("peer on the node", func(t *testing.T) {
		tr := trace(t, a.NS, node.NS, b.Addr, quick)
		checkPoints(t, tr, topology.TurnPeer, podA, veth, veth)
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
		flushEchoDrops(t, node.NSPath, "FORWARD")
	})
	t.Run("the node itself", func(t *testing.T) {
		for _, target := range []netip.Addr{network.Gateway, node.UplinkAddr} {
			tr := trace(t, a.NS, node.NS, target, quick)
			checkPoints(t, tr, topology.TurnNode, podA, veth)
			checkClasses(t, tr.Report, report.ClassEgress, report.ClassNode, report.ClassIngress)
			checkAllSeen(t, tr.Report, quick.count)
		}
		dropEchoRequests(t, node.NSPath, "INPUT")
		checkLossIn(t, trace(t, a.NS, node.NS, network.Gateway, lossy).Report, lossy, report.ClassNode, report.DirRequest)
		flushEchoDrops(t, node.NSPath, "INPUT")
	})
	t.Run("across nodes", func(t *testing.T) {
		tr := trace(t, a.NS, node.NS, l.Nodes[1].Pod.Addr, quick)
		checkPoints(t, tr, topology.TurnNetwork, podA, veth, wantPoint{topology.KindVXLAN, node.NS}, wantPoint{topology.KindUplink, node.NS})
		checkAllSeen(t, tr.Report, quick.count)
		if p := tr.Report.Points[2]; p.TunnelPort == 0 {
			t.Errorf("the VXLAN point %+v has no tunnel port", p)
		}
	})
}
