package lab

import (
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"

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

// setupNode turns n's namespace into a node of l's topology, without the
// overlay.
func (l *Lab) setupNode(n *Node) error {
	if l.Topology == TopologyRouted {
		return n.setupRouted()
	}
	return n.setup()
}

// setup turns the node namespace into a flannel node without the overlay:
// lo up, IPv4 forwarding on, bridge cni0, and each pod on a veth pair.
func (n *Node) setup() error {
	if err := enableForwarding(n.NS, n.Name); err != nil {
		return err
	}
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		if err := linkUp(h, "lo", n.Name); err != nil {
			return err
		}
		bridge, err := n.addBridge(h)
		if err != nil {
			return err
		}
		for _, p := range n.pods() {
			if _, err := n.addPodVeth(h, p, "veth", bridge.Attrs().Index); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range n.pods() {
		if err := withHandle(p.NS, p.Name, func(h *netlink.Handle) error { return n.setupPod(h, p) }); err != nil {
			return err
		}
	}
	return nil
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
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up in %s: %w", BridgeName, n.Name, err)
	}
	return link, nil
}

// addPodVeth creates p's veth pair from the node side: the host end
// gets a random <prefix><8 hex> name, joins the bridge with index master
// (none when 0) and is set up; the peer is created directly inside the pod
// namespace as eth0. It returns the host end.
func (n *Node) addPodVeth(h *netlink.Handle, p *Pod, prefix string, master int) (netlink.Link, error) {
	suffix, err := randomHex(4)
	if err != nil {
		return nil, fmt.Errorf("choose veth name in %s: %w", n.Name, err)
	}
	name := prefix + suffix
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: MTU, MasterIndex: master},
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

// setupPod configures p's side: lo and eth0 up, the pod address, and a
// default route via the bridge.
func (n *Node) setupPod(h *netlink.Handle, p *Pod) error {
	eth, err := podInterface(h, p, ipNet(slash24(p.Addr)))
	if err != nil {
		return err
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.gateway().AsSlice(), Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	if err := h.RouteAdd(def); err != nil {
		return fmt.Errorf("add default route via %s in %s: %w", n.gateway(), p.Name, err)
	}
	return nil
}

// podInterface brings p's lo up and its eth0 up with the address addr, and
// returns eth0; both topologies start their pods this way.
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
