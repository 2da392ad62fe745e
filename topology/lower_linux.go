package topology

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// throughParent adds the points of a probe that leaves the pod by a
// macvlan or ipvlan: the pod's interface and its parent device on the node
// (IFLA_LINK, in the node netns). The child hands its frames straight to
// the parent's driver: they cross no bridge, routing or netfilter of the
// node, and the parent's taps see them leave (TX) and the replies arrive
// (RX), so the parent is the path's uplink and what lies beyond it the
// network. A macvlan in bridge mode delivers frames for a sibling on the
// same parent inside the driver, where no tap of the node sees them: then
// the path is the pod's interface alone, and the turnaround is that peer.
func (d *discovery) throughParent(podLink netlink.Link, r netlink.Route) error {
	parent, err := d.nodeEnd(podLink, podLink.Type()+" parent")
	if err != nil {
		return err
	}
	d.add(d.pod, podLink, KindPod, TX)
	sibling, err := d.macvlanSibling(podLink, parent, r)
	if err != nil {
		return err
	}
	if sibling {
		d.turn = TurnPeer
		return nil
	}
	d.add(d.node, parent, KindUplink, TX)
	d.turn = TurnNetwork
	return nil
}

// macvlanSibling reports whether the probes' next hop (the pod's route r:
// its gateway, else the target) is another macvlan on the same parent,
// with the pod's macvlan in bridge mode: the hop's MAC address, from the
// pod's neighbour table (resolved as the first probe would when there is
// no entry), is one the parent accepts as its own, a "self" entry of its
// FDB (every macvlan adds its address there when it comes up), and not
// the parent's own address.
func (d *discovery) macvlanSibling(podLink, parent netlink.Link, r netlink.Route) (bool, error) {
	mv, ok := podLink.(*netlink.Macvlan)
	if !ok || mv.Mode != netlink.MACVLAN_MODE_BRIDGE {
		return false, nil
	}
	hop := d.target
	if gw, ok := netip.AddrFromSlice(r.Gw); ok {
		hop = gw.Unmap()
	}
	mac, err := resolveMAC(d.podNL, podLink, hop)
	if err != nil {
		return false, fmt.Errorf("find the next hop %s of %s@%s: %w", hop, podLink.Attrs().Name, d.pod, err)
	}
	if bytes.Equal(mac, parent.Attrs().HardwareAddr) {
		return false, nil
	}
	fdb, err := RetryDump(func() ([]netlink.Neigh, error) { return d.nodeNL.NeighList(parent.Attrs().Index, unix.AF_BRIDGE) })
	if err != nil {
		return false, fmt.Errorf("read the FDB of %s@%s: %w", parent.Attrs().Name, d.node, err)
	}
	for _, n := range fdb {
		if n.LinkIndex == parent.Attrs().Index && n.Flags&netlink.NTF_SELF != 0 && bytes.Equal(n.HardwareAddr, mac) {
			return true, nil
		}
	}
	return false, nil
}
