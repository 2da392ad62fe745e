//go:build linux

package capture

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// A throw-away two-node VXLAN setup for the privileged tests, entirely inside
// two network namespaces it creates:
//
//	A: vx0 10.98.0.1/24 (VNI 1, port 8472) over ul0 10.99.0.1/30
//	   | veth |
//	B: vx0 10.98.0.2/24 (VNI 1, port 8472) over ul0 10.99.0.2/30
//
// FDB and neighbour entries are static, so no ARP or learning is involved.
// Nothing in the root namespace is touched.

const (
	labVNI  = 1
	labPort = 8472
)

type labNode struct {
	ns       *topology.NetNS
	h        *netlink.Handle
	under    netip.Addr
	overlay  netip.Addr
	ulMAC    net.HardwareAddr
	vxMAC    net.HardwareAddr
	ul, vx   int // ifindexes
	vxPrefix int
}

type vxlanLab struct{ a, b *labNode }

// newVXLANLab builds the setup and registers its removal, even when the test
// fails half-way.
func newVXLANLab(t *testing.T) *vxlanLab {
	t.Helper()
	labtest.Require(t)
	lab := &vxlanLab{
		a: newLabNode(t, "capt-a", "10.99.0.1", "10.98.0.1", 0x0a),
		b: newLabNode(t, "capt-b", "10.99.0.2", "10.98.0.2", 0x0b),
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: "ul0", HardwareAddr: lab.a.ulMAC},
		PeerName:         "ul0",
		PeerHardwareAddr: lab.b.ulMAC,
		PeerNamespace:    netlink.NsFd(lab.b.ns.Fd()),
	}
	if err := lab.a.h.LinkAdd(veth); err != nil {
		t.Fatalf("create underlay veth: %v", err)
	}
	lab.a.setup(t, lab.b)
	lab.b.setup(t, lab.a)
	return lab
}

func newLabNode(t *testing.T, name, under, overlay string, id byte) *labNode {
	t.Helper()
	ns := labtest.NetNS(t, name)
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatalf("open netlink in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	return &labNode{
		ns: ns, h: h,
		under:    netip.MustParseAddr(under),
		overlay:  netip.MustParseAddr(overlay),
		ulMAC:    net.HardwareAddr{0x02, 0xca, 0, 0, 1, id},
		vxMAC:    net.HardwareAddr{0x02, 0xca, 0, 0, 2, id},
		vxPrefix: 24,
	}
}

// setup addresses the underlay, creates the VXLAN device and points its FDB
// and neighbour table at peer.
func (n *labNode) setup(t *testing.T, peer *labNode) {
	t.Helper()
	ul, err := n.h.LinkByName("ul0")
	if err != nil {
		t.Fatalf("look up ul0: %v", err)
	}
	n.ul = ul.Attrs().Index
	n.addrUp(t, ul, n.under, 30)
	n.neigh(t, unix.AF_INET, n.ul, peer.under, peer.ulMAC, 0)
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: "vx0", HardwareAddr: n.vxMAC, MTU: 1450},
		VxlanId:      labVNI,
		VtepDevIndex: n.ul,
		SrcAddr:      n.under.AsSlice(),
		Port:         labPort,
	}
	if err := n.h.LinkAdd(vx); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("skipping: this kernel has no VXLAN: %v", err)
		}
		t.Fatalf("create vx0: %v", err)
	}
	link, err := n.h.LinkByName("vx0")
	if err != nil {
		t.Fatalf("look up vx0: %v", err)
	}
	n.vx = link.Attrs().Index
	n.addrUp(t, link, n.overlay, n.vxPrefix)
	n.neigh(t, unix.AF_INET, n.vx, peer.overlay, peer.vxMAC, 0)
	n.neigh(t, unix.AF_BRIDGE, n.vx, peer.under, peer.vxMAC, netlink.NTF_SELF)
}

func (n *labNode) addrUp(t *testing.T, link netlink.Link, a netip.Addr, bits int) {
	t.Helper()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}}
	if err := n.h.AddrAdd(link, addr); err != nil {
		t.Fatalf("add %s to %s: %v", addr, link.Attrs().Name, err)
	}
	if err := n.h.LinkSetUp(link); err != nil {
		t.Fatalf("set %s up: %v", link.Attrs().Name, err)
	}
}

// neigh adds a permanent neighbour (AF_INET) or FDB (AF_BRIDGE, NTF_SELF)
// entry.
func (n *labNode) neigh(t *testing.T, family, link int, ip netip.Addr, mac net.HardwareAddr, flags int) {
	t.Helper()
	e := &netlink.Neigh{LinkIndex: link, Family: family, Flags: flags, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
	if err := n.h.NeighSet(e); err != nil {
		t.Fatalf("add neighbour %s lladdr %s (family %d): %v", ip, mac, family, err)
	}
}

// points returns A's capture points in request order: the VXLAN device, then
// the underlay it sends through.
func (lab *vxlanLab) points() []topology.Point {
	ns := lab.a.ns.ID()
	return []topology.Point{
		{ID: "p0", Interface: "vx0", Ifindex: lab.a.vx, NetNS: ns, Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: labPort},
		{ID: "p1", Interface: "ul0", Ifindex: lab.a.ul, NetNS: ns, Kind: topology.KindUplink, RequestDir: topology.TX},
	}
}

func (lab *vxlanLab) targets() []Target {
	var ts []Target
	for _, p := range lab.points() {
		ts = append(ts, Target{NS: lab.a.ns, Point: p})
	}
	return ts
}
