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

// TestPrivilegedRealBridgeOverVXLAN runs two containerd daemons, one per
// lab node, each wiring its pods with the reference bridge plugin on the
// node's cni0, over the lab's flannel-style VXLAN: from a pod on node 1 to
// one on node 2 the path is the pod, its veth, the bridge, flannel.1 and
// the uplink, and the turnaround the network. A drop in node 2's FORWARD
// chain is lost beyond the uplink; one in node 1's between its bridge and
// flannel.1, where FORWARD runs, in the request direction.
func TestPrivilegedRealBridgeOverVXLAN(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t)
	l := labtest.New(t)
	var pods []realPod
	for _, node := range l.Nodes {
		network := containerd.NodeBridge(node)
		network.IPMasq = false // each node routes the other's pod CIDR over flannel.1
		conf, err := containerd.BridgeConfList(network)
		if err != nil {
			t.Fatal(err)
		}
		d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
		pods = append(pods, runRealPod(t, d, "web-"+node.Name))
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	src, dst := pods[0], pods[1]

	tr := trace(t, src.NS, n1.NS, dst.Addr, quick)
	checkPoints(t, tr, topology.TurnNetwork, wantPoint{topology.KindPod, src.NS}, wantPoint{topology.KindVeth, n1.NS},
		wantPoint{topology.KindBridge, n1.NS}, wantPoint{topology.KindVXLAN, n1.NS}, wantPoint{topology.KindUplink, n1.NS})
	checkClasses(t, tr.Report, report.ClassEgress, report.ClassForwarding, report.ClassForwarding, report.ClassForwarding,
		report.ClassNetwork, report.ClassForwarding, report.ClassForwarding, report.ClassForwarding, report.ClassIngress)
	checkAllSeen(t, tr.Report, quick.count)
	if p := tr.Report.Points[3]; p.TunnelPort == 0 {
		t.Errorf("the VXLAN point %+v has no tunnel port", p)
	}

	dropEchoRequests(t, n2.NSPath, "FORWARD")
	checkLossIn(t, trace(t, src.NS, n1.NS, dst.Addr, lossy).Report, lossy, report.ClassNetwork, report.DirRequest)
	flushEchoDrops(t, n2.NSPath, "FORWARD")

	dropEchoRequests(t, n1.NSPath, "FORWARD")
	checkLossBetween(t, trace(t, src.NS, n1.NS, dst.Addr, lossy).Report, lossy, topology.KindBridge, topology.KindVXLAN)
}
