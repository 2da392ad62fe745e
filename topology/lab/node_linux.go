package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// withHandle runs fn with a rtnetlink handle bound to ns (named name in
// errors) and closes the handle afterwards.
func withHandle(ns *topology.NetNS, name string, fn func(h *netlink.Handle) error) error {
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		return fmt.Errorf("in %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// setupNode turns n's namespace into a node of l's layout, without the
// overlay. On the flannel layout, hairpin puts the bridge ports in hairpin
// mode.
func (l *Lab) setupNode(n *Node, hairpin bool) error {
	if l.Layout == LayoutRouted {
		return n.setupRouted()
	}
	return n.setup(hairpin)
}

// setup turns the node namespace into a flannel node without the overlay:
// lo up, IPv4 and IPv6 forwarding on, bridge cni0, each pod on a veth pair,
// and permanent IPv6 neighbour entries between each pod and the bridge.
// With hairpin the veths are ports in hairpin mode, as the CNI bridge
// plugin sets them with flannel's "hairpinMode": true: a frame may leave
// by the port it came in on, which a pod needs to reach itself through a
// Service (DNATed back to it, masqueraded). Hairpin mode also reflects a
// pod's broadcasts back to it, which is why a lab without a kube-proxy
// Service goes without it.
func (n *Node) setup(hairpin bool) error {
	if err := n.sysctls(); err != nil {
		return err
	}
	var bridgeMAC net.HardwareAddr
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		if err := linkUp(h, "lo", n.Name); err != nil {
			return err
		}
		bridge, err := n.addBridge(h)
		if err != nil {
			return err
		}
		for _, p := range n.pods() {
			veth, err := n.addPodVeth(h, p, "veth", bridge.Attrs().Index, nil)
			if err != nil {
				return err
			}
			if hairpin {
				if err := h.LinkSetHairpin(veth, true); err != nil {
					return fmt.Errorf("set hairpin mode on %s in %s: %w", veth.Attrs().Name, n.Name, err)
				}
			}
		}
		// Read only now: a bridge without a MAC of its own takes its
		// ports' lowest.
		bridgeMAC, err = linkMAC(h, BridgeName, n.Name)
		return err
	})
	if err != nil {
		return err
	}
	for _, p := range n.pods() {
		setup := func(h *netlink.Handle) error { return n.setupPod(h, p, bridgeMAC) }
		if err := n.startPod(p, setup, BridgeName); err != nil {
			return err
		}
	}
	return nil
}

// sysctls turns IPv4 and IPv6 forwarding on in the node and duplicate
// address detection off in the node and its pods, before any interface
// exists there (see disableDAD), so no address waits out detection (Up
// still waits for the kernel to clear the flag: waitAddrsSettled); both
// layouts start their nodes this way.
func (n *Node) sysctls() error {
	if err := enableForwarding(n.NS, n.Name); err != nil {
		return err
	}
	if err := enableIPv6Forwarding(n.NS, n.Name); err != nil {
		return err
	}
	if err := disableDAD(n.NS, n.Name); err != nil {
		return err
	}
	for _, p := range n.pods() {
		if err := disableDAD(p.NS, p.Name); err != nil {
			return err
		}
	}
	return nil
}

// startPod configures p's side with setup, then gives the node a permanent
// IPv6 neighbour entry for the pod on the node's link toward it, so the
// first IPv6 packet to the pod needs no neighbour solicitation.
func (n *Node) startPod(p *Pod, setup func(*netlink.Handle) error, link string) error {
	var podMAC net.HardwareAddr
	err := withHandle(p.NS, p.Name, func(h *netlink.Handle) error {
		if err := setup(h); err != nil {
			return err
		}
		var err error
		podMAC, err = linkMAC(h, PodIfName, p.Name)
		return err
	})
	if err != nil {
		return err
	}
	return withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		return addNeigh6(h, n.Name, link, p.Addr6, podMAC)
	})
}

// enableIPv6Forwarding sets net.ipv6.conf.all.forwarding=1 in ns, inside
// ns as enableForwarding does.
func enableIPv6Forwarding(ns *topology.NetNS, name string) error {
	err := ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1\n"), 0o644)
	})
	if err != nil {
		return fmt.Errorf("enable IPv6 forwarding in %s: %w", name, err)
	}
	return nil
}

// disableDAD sets net.ipv6.conf.default.accept_dad=0 in ns, before the
// lab creates or moves in any interface, so that the link-local addresses
// the kernel gives them are usable at once too (addAddr6 covers the lab's
// own). While a device's only link-local address is tentative, the kernel
// sends no neighbour solicitation that has no packet to take its source
// from (ndisc_send_ns returns), as when discovery asks it to resolve a
// peer with NTF_USE: a same-node IPv6 trace right after Up would find no
// MAC for its peer for the first second or two.
func disableDAD(ns *topology.NetNS, name string) error {
	err := ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0\n"), 0o644)
	})
	if err != nil {
		return fmt.Errorf("turn off IPv6 duplicate address detection in %s: %w", name, err)
	}
	return nil
}

// addAddr6 gives link the IPv6 address p without duplicate address
// detection, which would keep it tentative, unusable, for a second or two:
// the lab alone hands out its addresses.
func addAddr6(h *netlink.Handle, link netlink.Link, p netip.Prefix, ns string) error {
	addr := &netlink.Addr{IPNet: ipNet(p), Flags: unix.IFA_F_NODAD}
	if err := h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s in %s: %w", p, link.Attrs().Name, ns, err)
	}
	return nil
}

// addNeigh6 adds a permanent IPv6 neighbour entry ip lladdr mac on the link
// called link. The lab writes one where it controls both ends (pod and
// bridge), so the first IPv6 packets never wait for, or lose, a neighbour
// solicitation sent while the links were coming up.
func addNeigh6(h *netlink.Handle, ns, link string, ip netip.Addr, mac net.HardwareAddr) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", link, ns, err)
	}
	neigh := &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       unix.AF_INET6,
		State:        netlink.NUD_PERMANENT,
		Type:         unix.RTN_UNICAST,
		IP:           ip.AsSlice(),
		HardwareAddr: mac,
	}
	if err := h.NeighSet(neigh); err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s on %s in %s: %w", ip, mac, link, ns, err)
	}
	return nil
}

// linkMAC returns the MAC address of the link called name.
func linkMAC(h *netlink.Handle, name, ns string) (net.HardwareAddr, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up %s in %s: %w", name, ns, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// enableForwarding sets net.ipv4.ip_forward=1 in ns. /proc/sys/net shows
// the namespace of the thread that opens it, so the write happens inside ns.
func enableForwarding(ns *topology.NetNS, name string) error {
	err := ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	})
	if err != nil {
		return fmt.Errorf("enable ip_forward in %s: %w", name, err)
	}
	return nil
}

// addBridge creates cni0 with the pod gateway address, as the CNI bridge
// plugin does with isGateway.
func (n *Node) addBridge(h *netlink.Handle) (netlink.Link, error) {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName, MTU: MTU}}
	if err := h.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("create bridge %s in %s: %w", BridgeName, n.Name, err)
	}
	link, err := h.LinkByName(BridgeName)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s in %s: %w", BridgeName, n.Name, err)
	}
	gw := ipNet(slash24(n.gateway()))
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: gw}); err != nil {
		return nil, fmt.Errorf("add address %s to %s in %s: %w", gw, BridgeName, n.Name, err)
	}
	if err := addAddr6(h, link, netip.PrefixFrom(n.gateway6(), 64), n.Name); err != nil {
		return nil, err
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up in %s: %w", BridgeName, n.Name, err)
	}
	return link, nil
}

// addPodVeth creates p's veth pair from the node side: the host end
// gets a random <prefix><8 hex> name, the MAC mac (a random one when nil),
// joins the bridge with index master (none when 0) and is set up; the peer is created directly inside the pod
// namespace as eth0. It returns the host end.
func (n *Node) addPodVeth(h *netlink.Handle, p *Pod, prefix string, master int, mac net.HardwareAddr) (netlink.Link, error) {
	suffix, err := randomHex(4)
	if err != nil {
		return nil, fmt.Errorf("choose veth name in %s: %w", n.Name, err)
	}
	name := prefix + suffix
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: MTU, MasterIndex: master, HardwareAddr: mac},
		PeerName:      PodIfName,
		PeerMTU:       MTU,
		PeerNamespace: netlink.NsFd(p.NS.Fd()),
	}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s (peer %s in %s) in %s: %w", name, PodIfName, p.Name, n.Name, err)
	}
	p.HostVeth = name
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up %s in %s: %w", name, n.Name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up in %s: %w", name, n.Name, err)
	}
	return link, nil
}

// setupPod configures p's side: lo and eth0 up, the pod's IPv4 and IPv6
// addresses, default routes via the bridge, and a permanent neighbour entry
// for the bridge's IPv6 address, whose MAC is bridgeMAC.
func (n *Node) setupPod(h *netlink.Handle, p *Pod, bridgeMAC net.HardwareAddr) error {
	eth, err := podInterface(h, p, ipNet(slash24(p.Addr)))
	if err != nil {
		return err
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.gateway().AsSlice(), Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	if err := h.RouteAdd(def); err != nil {
		return fmt.Errorf("add default route via %s in %s: %w", n.gateway(), p.Name, err)
	}
	if err := addAddr6(h, eth, netip.PrefixFrom(p.Addr6, 64), p.Name); err != nil {
		return err
	}
	def6 := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.gateway6().AsSlice(), Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
	if err := h.RouteAdd(def6); err != nil {
		return fmt.Errorf("add default route via %s in %s: %w", n.gateway6(), p.Name, err)
	}
	return addNeigh6(h, p.Name, PodIfName, n.gateway6(), bridgeMAC)
}

// podInterface brings p's lo up and its eth0 up with the address addr, and
// returns eth0; both layouts start their pods this way.
func podInterface(h *netlink.Handle, p *Pod, addr *net.IPNet) (netlink.Link, error) {
	if err := linkUp(h, "lo", p.Name); err != nil {
		return nil, err
	}
	eth, err := h.LinkByName(PodIfName)
	if err != nil {
		return nil, fmt.Errorf("look up %s in %s: %w", PodIfName, p.Name, err)
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: addr}); err != nil {
		return nil, fmt.Errorf("add address %s to %s in %s: %w", addr, PodIfName, p.Name, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return nil, fmt.Errorf("set %s up in %s: %w", PodIfName, p.Name, err)
	}
	return eth, nil
}

// linkUp sets the link called name up.
func linkUp(h *netlink.Handle, name, ns string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", name, ns, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in %s: %w", name, ns, err)
	}
	return nil
}
