package lab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// connectUplink joins two nodes with one veth pair, both ends named
// UplinkName, addressed from 192.168.255.0/30: the "network" between them.
// A lab with a wire uses connectWire instead.
func connectUplink(a, b *Node) error {
	err := withHandle(a.NS, a.Name, func(h *netlink.Handle) error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: UplinkName},
			PeerName:      UplinkName,
			PeerNamespace: netlink.NsFd(b.NS.Fd()),
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create uplink veth %s (peer %s in %s) in %s: %w", UplinkName, UplinkName, b.Name, a.Name, err)
		}
		return a.configureUplink(h)
	})
	if err != nil {
		return err
	}
	return withHandle(b.NS, b.Name, b.configureUplink)
}

// configureUplink gives the node's uplink its address and sets it up.
func (n *Node) configureUplink(h *netlink.Handle) error {
	link, err := h.LinkByName(UplinkName)
	if err != nil {
		return fmt.Errorf("look up uplink %s in %s: %w", UplinkName, n.Name, err)
	}
	addr := ipNet(n.uplinkPrefix())
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("add address %s to %s in %s: %w", addr, UplinkName, n.Name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in %s: %w", UplinkName, n.Name, err)
	}
	return nil
}

// setupOverlay installs in local what flannel's vxlan backend (or Calico's,
// on the routed layout, with its own device name, port and VNI) installs:
// the VXLAN device over the uplink, and for the remote node a route to its
// pod CIDR via its VTEP address (onlink), a permanent neighbour entry for
// that address and a bridge FDB entry sending its VTEP MAC to its uplink
// address. On the routed layout it also gives local a default route via
// remote's uplink, as a real node has one: proxy ARP answers only for an
// address the node has a route to (RoutedGateway).
func (l *Lab) setupOverlay(local, remote *Node) error {
	lay := l.Layout.wiring()
	return withHandle(local.NS, local.Name, func(h *netlink.Handle) error {
		vx, err := local.addVXLAN(h, lay)
		if err != nil {
			return err
		}
		if err := addRemote(h, local.Name, lay.vxlan, vx.Attrs().Index, remote); err != nil {
			return err
		}
		if l.Layout == LayoutRouted {
			return local.addDefaultRoute(h, remote)
		}
		return nil
	})
}

// addVXLAN creates lay's VXLAN device with the node's fixed MAC and VTEP
// address.
func (n *Node) addVXLAN(h *netlink.Handle, lay wiring) (netlink.Link, error) {
	name := lay.vxlan
	uplink, err := h.LinkByName(UplinkName)
	if err != nil {
		return nil, fmt.Errorf("look up uplink %s in %s: %w", UplinkName, n.Name, err)
	}
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: name, MTU: MTU, HardwareAddr: n.vtepMAC()},
		VxlanId:      lay.vni,
		VtepDevIndex: uplink.Attrs().Index,
		SrcAddr:      n.UplinkAddr.AsSlice(),
		Port:         lay.port,
		Learning:     false,
	}
	if err := h.LinkAdd(vx); err != nil {
		return nil, fmt.Errorf("create vxlan %s in %s: %w", name, n.Name, err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up %s in %s: %w", name, n.Name, err)
	}
	addr := &net.IPNet{IP: n.vtepAddr().AsSlice(), Mask: net.CIDRMask(32, 32)}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: addr}); err != nil {
		return nil, fmt.Errorf("add address %s to %s in %s: %w", addr, name, n.Name, err)
	}
	if n.dualStack() {
		if err := addAddr6(h, link, netip.PrefixFrom(n.vtepAddr6(), 128), n.Name); err != nil {
			return nil, err
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up in %s: %w", name, n.Name, err)
	}
	return link, nil
}

// addRemote installs the route, neighbour and FDB entry for remote on the
// VXLAN device vx (called vxName) of the namespace called ns. A dual-stack
// remote gets an IPv6 route and neighbour entry on the same device too: the
// FDB entry is per MAC, so both families reach the same VTEP through it.
func addRemote(h *netlink.Handle, ns, vxName string, vx int, remote *Node) error {
	if err := addPeerRoute(h, ns, vxName, vx, remote.PodCIDR, remote.vtepAddr(), remote.vtepMAC()); err != nil {
		return err
	}
	if remote.dualStack() {
		if err := addPeerRoute(h, ns, vxName, vx, remote.PodCIDR6, remote.vtepAddr6(), remote.vtepMAC()); err != nil {
			return err
		}
	}
	fdb := &netlink.Neigh{
		LinkIndex:    vx,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_SELF,
		State:        netlink.NUD_PERMANENT,
		HardwareAddr: remote.vtepMAC(),
		IP:           remote.UplinkAddr.AsSlice(),
	}
	if err := h.NeighSet(fdb); err != nil {
		return fmt.Errorf("add fdb entry %s dst %s on %s in %s: %w", remote.vtepMAC(), remote.UplinkAddr, vxName, ns, err)
	}
	return nil
}

// addPeerRoute routes dst via the remote VTEP address gw on the VXLAN
// device vx (onlink) and adds a permanent neighbour entry gw lladdr mac,
// in gw's family.
func addPeerRoute(h *netlink.Handle, ns, vxName string, vx int, dst netip.Prefix, gw netip.Addr, mac net.HardwareAddr) error {
	route := &netlink.Route{
		LinkIndex: vx,
		Dst:       ipNet(dst),
		Gw:        gw.AsSlice(),
		Flags:     int(netlink.FLAG_ONLINK),
	}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("add route %s via %s dev %s onlink in %s: %w", dst, gw, vxName, ns, err)
	}
	family := unix.AF_INET
	if gw.Is6() {
		family = unix.AF_INET6
	}
	neigh := &netlink.Neigh{
		LinkIndex:    vx,
		Family:       family,
		State:        netlink.NUD_PERMANENT,
		Type:         unix.RTN_UNICAST,
		IP:           gw.AsSlice(),
		HardwareAddr: mac,
	}
	if err := h.NeighSet(neigh); err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s on %s in %s: %w", gw, mac, vxName, ns, err)
	}
	return nil
}
