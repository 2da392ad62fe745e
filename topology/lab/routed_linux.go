package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology"
)

// setupRouted turns the node namespace into a routed (Calico-style) node
// without the overlay: lo up, IPv4 and IPv6 forwarding on, each pod on a
// veth pair with no bridge, the host end without an address of its own but
// with Calico's MAC RoutedVethMAC (hence the link-local RoutedGateway6) and
// proxy ARP, a /32 and a /128 route to the pod through it, and a permanent
// neighbour entry for the pod's IPv6 address on it (as Calico's felix
// writes for each workload).
func (n *Node) setupRouted() error {
	if err := n.sysctls(); err != nil {
		return err
	}
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		if err := linkUp(h, "lo", n.Name); err != nil {
			return err
		}
		for _, p := range n.pods() {
			if err := n.addRoutedVeth(h, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range n.pods() {
		if err := enableProxyARP(n.NS, n.Name, p.HostVeth); err != nil {
			return err
		}
		setup := func(h *netlink.Handle) error { return setupRoutedPod(h, p) }
		if err := n.startPod(p, setup, p.HostVeth); err != nil {
			return err
		}
	}
	return nil
}

// addRoutedVeth creates p's veth pair with RoutedVethMAC on the host end
// and routes p's IPv4 /32 and IPv6 /128 through it.
func (n *Node) addRoutedVeth(h *netlink.Handle, p *Pod) error {
	veth, err := n.addPodVeth(h, p, RoutedVethPrefix, 0, RoutedVethMAC)
	if err != nil {
		return err
	}
	host := &netlink.Route{LinkIndex: veth.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: hostNet(p.Addr.AsSlice())}
	if err := h.RouteAdd(host); err != nil {
		return fmt.Errorf("add route %s dev %s in %s: %w", p.Addr, p.HostVeth, n.Name, err)
	}
	host6 := &netlink.Route{LinkIndex: veth.Attrs().Index, Dst: ipNet(netip.PrefixFrom(p.Addr6, 128))}
	if err := h.RouteAdd(host6); err != nil {
		return fmt.Errorf("add route %s dev %s in %s: %w", p.Addr6, p.HostVeth, n.Name, err)
	}
	return nil
}

// enableProxyARP sets net.ipv4.conf.<link>.proxy_arp=1 and, as Calico
// does, net.ipv4.neigh.<link>.proxy_delay=0 (else the kernel answers a
// broadcast ARP request only after a random delay of up to 0.8 s). The
// writes happen inside ns, as in enableForwarding.
func enableProxyARP(ns *topology.NetNS, name, link string) error {
	err := ns.Do(func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", link, "proxy_arp"), []byte("1\n"), 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join("/proc/sys/net/ipv4/neigh", link, "proxy_delay"), []byte("0\n"), 0o644)
	})
	if err != nil {
		return fmt.Errorf("enable proxy ARP on %s in %s: %w", link, name, err)
	}
	return nil
}

// setupRoutedPod configures p's side as Calico does: the pod address as a
// /32, a link route to RoutedGateway and the default route via it; the IPv6
// address as a /128 and the IPv6 default route via RoutedGateway6, the host
// veth's own link-local address.
func setupRoutedPod(h *netlink.Handle, p *Pod) error {
	eth, err := podInterface(h, p, hostNet(p.Addr.AsSlice()))
	if err != nil {
		return err
	}
	gw := &netlink.Route{LinkIndex: eth.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: hostNet(RoutedGateway.AsSlice())}
	if err := h.RouteAdd(gw); err != nil {
		return fmt.Errorf("add route %s dev %s scope link in %s: %w", RoutedGateway, PodIfName, p.Name, err)
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: RoutedGateway.AsSlice(), Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	if err := h.RouteAdd(def); err != nil {
		return fmt.Errorf("add default route via %s in %s: %w", RoutedGateway, p.Name, err)
	}
	if err := addAddr6(h, eth, netip.PrefixFrom(p.Addr6, 128), p.Name); err != nil {
		return err
	}
	def6 := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: RoutedGateway6.AsSlice(), Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
	if err := h.RouteAdd(def6); err != nil {
		return fmt.Errorf("add default route via %s dev %s in %s: %w", RoutedGateway6, PodIfName, p.Name, err)
	}
	return nil
}

// addDefaultRoute gives n a default route via remote's uplink address.
func (n *Node) addDefaultRoute(h *netlink.Handle, remote *Node) error {
	uplink, err := h.LinkByName(UplinkName)
	if err != nil {
		return fmt.Errorf("look up uplink %s in %s: %w", UplinkName, n.Name, err)
	}
	def := &netlink.Route{LinkIndex: uplink.Attrs().Index, Gw: remote.UplinkAddr.AsSlice(), Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	if err := h.RouteAdd(def); err != nil {
		return fmt.Errorf("add default route via %s in %s: %w", remote.UplinkAddr, n.Name, err)
	}
	return nil
}

// hostNet is ip as a /32.
func hostNet(ip net.IP) *net.IPNet { return &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)} }
