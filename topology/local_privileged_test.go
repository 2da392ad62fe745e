//go:build linux

package topology_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// wantPoint is a point as the tests check it: by kind and netns only.
type wantPoint struct {
	kind topology.Kind
	ns   *topology.NetNS
}

// checkPath asserts path's points by kind and netns, and its turnaround.
func checkPath(t *testing.T, path *topology.Path, turn topology.Turnaround, want ...wantPoint) {
	t.Helper()
	if path.Turnaround != turn {
		t.Errorf("path %s turns around at %q, want %q", path, path.Turnaround, turn)
	}
	if len(path.Points) != len(want) {
		t.Fatalf("path %s has %d points, want %d", path, len(path.Points), len(want))
	}
	for i, w := range want {
		if p := path.Points[i]; p.Kind != w.kind || p.NetNS != w.ns.ID() {
			t.Errorf("point %d is %s (%s), want kind %s in %s", i, p.Name(), p.Kind, w.kind, w.ns)
		}
	}
}

// TestPrivilegedDiscoverNodeLocal: a target that is an address of the
// node itself (its uplink's, the bridge's gateway address, IPv4 and IPv6)
// is a path that ends where the requests entered the node, at the bridge
// or, routed, at the pod's host veth, and turns around in the node.
func TestPrivilegedDiscoverNodeLocal(t *testing.T) {
	for _, layout := range lab.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: layout})
			n1 := l.Nodes[0]
			want := []wantPoint{{topology.KindPod, n1.Pod.NS}, {topology.KindVeth, n1.NS}}
			targets := []netip.Addr{n1.UplinkAddr}
			if layout == lab.LayoutFlannel {
				want = append(want, wantPoint{topology.KindBridge, n1.NS})
				targets = append(targets, n1.PodCIDR.Addr().Next(), n1.PodCIDR6.Addr().Next())
			}
			for _, target := range targets {
				path, err := topology.Discover(n1.Pod.NS, n1.NS, target)
				if err != nil {
					t.Errorf("discover %s: %v", target, err)
					continue
				}
				t.Logf("%s: %s", target, path)
				checkPath(t, path, topology.TurnNode, want...)
				if last := path.Points[len(path.Points)-1]; last.RequestDir != topology.RX {
					t.Errorf("%s: the last point %s is crossed %s by requests, want rx: they end there", target, last.Name(), last.RequestDir)
				}
			}
		})
	}
}

// TestPrivilegedDiscoverNumberedPodVeth: on a routed node, the host side
// of the peer pod's veth is that pod's even when it carries an address
// (as every ptp host veth carries the gateway's): the node reaches the
// peer by a host route without a gateway, and the turnaround is the peer.
func TestPrivilegedDiscoverNumberedPodVeth(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted})
	n1 := l.Nodes[0]
	nl, err := topology.NetlinkHandle(n1.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	for _, p := range []*lab.Pod{n1.Pod, n1.Sibling} {
		veth, err := nl.LinkByName(p.HostVeth)
		if err != nil {
			t.Fatal(err)
		}
		gw := &net.IPNet{IP: net.IPv4(10, 244, 1, 1), Mask: net.CIDRMask(32, 32)}
		if err := nl.AddrAdd(veth, &netlink.Addr{IPNet: gw}); err != nil {
			t.Fatal(err)
		}
	}
	path, err := topology.Discover(n1.Pod.NS, n1.NS, n1.Sibling.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", path)
	checkPath(t, path, topology.TurnPeer, wantPoint{topology.KindPod, n1.Pod.NS}, wantPoint{topology.KindVeth, n1.NS}, wantPoint{topology.KindVeth, n1.NS})
}
