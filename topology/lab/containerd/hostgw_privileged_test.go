//go:build linux

package containerd_test

import (
	"net/netip"
	"testing"

	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// hostGWSubnet is node i's pod subnet of the host-gw test, 10.245.<i>.0/24:
// clear of the lab's own pod CIDRs (10.244.<i>.0/24), which the lab's nodes
// route to each other over flannel.1, so that nothing of the CRI pods'
// traffic can take the overlay.
func hostGWSubnet(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 245, byte(i), 0}), 24)
}

// hostGWBridge is node i's bridge network of the host-gw test: the bridge
// plugin on a bridge of its own (not the lab's cni0), with the gateway .1
// and host-local from .16 to .254, no masquerading (the other node routes
// the subnet back to this one).
func hostGWBridge(i int) containerd.Bridge {
	subnet := hostGWSubnet(i)
	at := func(host byte) netip.Addr { a := subnet.Addr().As4(); a[3] = host; return netip.AddrFrom4(a) }
	return containerd.Bridge{
		Name:       "cnitrace-hostgw",
		Bridge:     "cni-hostgw",
		Subnet:     subnet,
		RangeStart: at(16),
		RangeEnd:   at(254),
		Gateway:    at(1),
		MTU:        lab.MTU,
	}
}

// TestPrivilegedRealBridgeHostGW runs two containerd daemons, one per lab
// node, each wiring its pods with the reference bridge plugin in a pod
// subnet of its own, routed between the nodes as flannel's host-gw
// backend does: on each node a plain route to the other node's pod subnet
// via the other node's uplink address, no overlay. From a pod on node 1 to
// one on node 2 the path is the pod, its veth, the bridge and the uplink,
// and the turnaround the network. A drop in node 2's FORWARD chain is lost
// beyond the uplink; one in node 1's between its bridge and the uplink,
// where FORWARD runs, in the request direction.
func TestPrivilegedRealBridgeHostGW(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t)
	l := labtest.New(t)
	var pods []realPod
	for i, node := range l.Nodes {
		conf, err := containerd.BridgeConfList(hostGWBridge(i + 1))
		if err != nil {
			t.Fatal(err)
		}
		d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
		pods = append(pods, runRealPod(t, d, "web-"+node.Name))
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	// What flanneld's host-gw backend programs: the other node's pod
	// subnet via its address on the shared link. The lab removes the
	// node namespaces, and the routes with them.
	inNetNS(t, n1.NSPath, "ip", "route", "add", hostGWSubnet(2).String(), "via", n2.UplinkAddr.String(), "dev", lab.UplinkName)
	inNetNS(t, n2.NSPath, "ip", "route", "add", hostGWSubnet(1).String(), "via", n1.UplinkAddr.String(), "dev", lab.UplinkName)
	src, dst := pods[0], pods[1]
	if !hostGWSubnet(1).Contains(src.Addr) || !hostGWSubnet(2).Contains(dst.Addr) {
		t.Fatalf("pods at %s and %s, want them in %s and %s", src.Addr, dst.Addr, hostGWSubnet(1), hostGWSubnet(2))
	}

	tr := trace(t, src.NS, n1.NS, dst.Addr, quick)
	checkPoints(t, tr, topology.TurnNetwork, wantPoint{topology.KindPod, src.NS}, wantPoint{topology.KindVeth, n1.NS},
		wantPoint{topology.KindBridge, n1.NS}, wantPoint{topology.KindUplink, n1.NS})
	checkClasses(t, tr.Report, report.ClassEgress, report.ClassForwarding, report.ClassForwarding,
		report.ClassNetwork, report.ClassForwarding, report.ClassForwarding, report.ClassIngress)
	checkAllSeen(t, tr.Report, quick.count)
	for _, p := range tr.Report.Points {
		if p.TunnelPort != 0 {
			t.Errorf("point %+v has a tunnel port on a path without an overlay", p)
		}
	}

	dropEchoRequests(t, n2.NSPath, "FORWARD")
	checkLossIn(t, trace(t, src.NS, n1.NS, dst.Addr, lossy).Report, lossy, report.ClassNetwork, report.DirRequest)
	flushEchoDrops(t, n2.NSPath, "FORWARD")

	dropEchoRequests(t, n1.NSPath, "FORWARD")
	checkLossBetween(t, trace(t, src.NS, n1.NS, dst.Addr, lossy).Report, lossy, topology.KindBridge, topology.KindUplink)
}
