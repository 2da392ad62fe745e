//go:build linux

package containerd_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedRealMacvlan traces from pods the reference macvlan plugin
// wired onto node 1's uplink (bridge mode; no veth, no bridge, the node's
// stack not crossed): to node 2, given an address in the pods' subnet on
// its uplink, at the other end of the wire, whose path is the pod's
// interface and the parent device, the network beyond it; and to a
// sibling macvlan on the same parent, which the driver delivers to
// inside, where no tap of the node sees it: the pod's interface alone,
// turning around at that peer. A drop in node 2's INPUT is lost in the
// network segment, one in the sibling's INPUT in the peer segment. (This
// kernel has no ipvlan: macvlan only.)
func TestPrivilegedRealMacvlan(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t)
	l := labtest.New(t)
	node, remote := l.Nodes[0], l.Nodes[1]
	conf, err := containerd.MacvlanConfList(containerd.NodeMacvlan(node))
	if err != nil {
		t.Fatal(err)
	}
	d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
	a, b := runRealPod(t, d, "a"), runRealPod(t, d, "b")
	podA := wantPoint{topology.KindPod, a.NS}
	far := addUplinkAddr(t, remote, netip.PrefixFrom(netip.MustParseAddr("198.51.100.2"), 24))

	t.Run("to the other node", func(t *testing.T) {
		tr := trace(t, a.NS, node.NS, far, quick)
		checkPoints(t, tr, topology.TurnNetwork, podA, wantPoint{topology.KindUplink, node.NS})
		checkClasses(t, tr.Report, report.ClassEgress, report.ClassNetwork, report.ClassIngress)
		checkAllSeen(t, tr.Report, quick.count)

		dropEchoRequests(t, remote.NSPath, "INPUT")
		checkLossIn(t, trace(t, a.NS, node.NS, far, lossy).Report, lossy, report.ClassNetwork, report.DirRequest)
		flushEchoDrops(t, remote.NSPath, "INPUT")
	})
	t.Run("to a sibling on the same parent", func(t *testing.T) {
		tr := trace(t, a.NS, node.NS, b.Addr, quick)
		checkPoints(t, tr, topology.TurnPeer, podA)
		checkClasses(t, tr.Report, report.ClassPeer)
		checkAllSeen(t, tr.Report, quick.count)

		dropEchoRequests(t, b.NSPath, "INPUT")
		checkLossIn(t, trace(t, a.NS, node.NS, b.Addr, lossy).Report, lossy, report.ClassPeer, report.DirRequest)
	})
}

// addUplinkAddr gives node's uplink the address p as well, and returns it.
func addUplinkAddr(t *testing.T, node *lab.Node, p netip.Prefix) netip.Addr {
	t.Helper()
	nl, err := topology.NetlinkHandle(node.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	up, err := nl.LinkByName(lab.UplinkName)
	if err != nil {
		t.Fatal(err)
	}
	ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
	if err := nl.AddrAdd(up, &netlink.Addr{IPNet: ipn}); err != nil {
		t.Fatalf("add %s to %s in %s: %v", p, lab.UplinkName, node.Name, err)
	}
	return p.Addr()
}
