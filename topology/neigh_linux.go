package topology

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Bounds of the wait for the kernel to resolve a neighbour: ARP (or ND)
// retransmits every second, so a live peer answers the first request.
const (
	neighResolveTimeout = time.Second
	neighPollInterval   = 10 * time.Millisecond
)

// resolveMAC returns the link-layer address of ip on link, in the namespace
// of h. When the neighbour table has no usable entry it asks the kernel to
// resolve one (RTM_NEWNEIGH with NTF_USE, which sends one ARP request or
// neighbour solicitation, as the first probe would) and waits for it.
func resolveMAC(h *netlink.Handle, link netlink.Link, ip netip.Addr) (net.HardwareAddr, error) {
	if mac, ok := neighbour(h, link, ip); ok {
		return mac, nil
	}
	use := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: family(ip), IP: ip.AsSlice(), Flags: netlink.NTF_USE}
	if err := h.NeighSet(use); err != nil {
		// RTM_NEWNEIGH, like every rtnetlink request but a read, needs
		// CAP_NET_ADMIN.
		return nil, fmt.Errorf("ask the kernel to resolve %s on %s: %w", ip, link.Attrs().Name, NeedsCapability(err, "CAP_NET_ADMIN"))
	}
	deadline := time.Now().Add(neighResolveTimeout)
	for time.Now().Before(deadline) {
		time.Sleep(neighPollInterval)
		if mac, ok := neighbour(h, link, ip); ok {
			return mac, nil
		}
	}
	return nil, fmt.Errorf("%s does not answer address resolution on %s (waited %s): is the target pod running, and is it on this node?", ip, link.Attrs().Name, neighResolveTimeout)
}

// neighbour returns the link-layer address of ip on link when the neighbour
// table has a usable entry for it.
func neighbour(h *netlink.Handle, link netlink.Link, ip netip.Addr) (net.HardwareAddr, bool) {
	neighs, err := RetryDump(func() ([]netlink.Neigh, error) { return h.NeighList(link.Attrs().Index, family(ip)) })
	if err != nil {
		return nil, false
	}
	const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if ok && a.Unmap() == ip && n.State&usable != 0 && len(n.HardwareAddr) > 0 {
			return n.HardwareAddr, true
		}
	}
	return nil, false
}

// family is ip's address family for netlink: AF_INET or AF_INET6.
func family(ip netip.Addr) int {
	if ip.Is4() || ip.Is4In6() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
