package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// linkReadyTimeout bounds the wait for the kernel to bring links up.
const linkReadyTimeout = 5 * time.Second

// waitLinksUp waits until every veth and bridge (if any) of the lab (and of its
// wire) is operationally up. Setting a link up is not enough: until the
// kernel's linkwatch work runs (up to a second later) the device keeps its
// noop qdisc and drops what it transmits. A bridge is hit hardest, since its ARP replies are dropped
// and the first packets to a pod wait a full ARP retransmit (~1 s).
func (l *Lab) waitLinksUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, linkReadyTimeout)
	defer cancel()
	for _, n := range l.Nodes {
		links := []string{UplinkName}
		for _, p := range n.pods() {
			if err := waitUp(ctx, p.NS, p.Name, PodIfName); err != nil {
				return err
			}
			links = append(links, p.HostVeth)
		}
		if br := l.Layout.wiring().bridge; br != "" {
			links = append(links, br)
		}
		if err := waitUp(ctx, n.NS, n.Name, links...); err != nil {
			return err
		}
		if l.Layout == LayoutRouted {
			if err := n.waitGateway6(ctx); err != nil {
				return err
			}
		}
	}
	if e := l.External; e != nil {
		if err := waitUp(ctx, l.Nodes[0].NS, l.Nodes[0].Name, ExternalLink); err != nil {
			return err
		}
		if err := waitUp(ctx, e.NS, e.Name, UplinkName); err != nil {
			return err
		}
	}
	if l.Wire != nil {
		if err := waitUp(ctx, l.Wire.NS, l.Wire.Name, WireLink1, WireLink2); err != nil {
			return err
		}
	}
	return l.waitAddrsSettled(ctx)
}

// waitAddrsSettled waits until no IPv6 address in any of the lab's
// namespaces is tentative. Duplicate address detection is off in all of
// them (disableDAD, addAddr6), but the kernel still clears an address's
// tentative flag from a work item of its own (addrconf_dad_work), which a
// loaded machine runs late: right after the links came up an address,
// a link-local one most often, can still be tentative for a moment, and
// while a device's is, the kernel sends no neighbour solicitation on it.
func (l *Lab) waitAddrsSettled(ctx context.Context) error {
	type netns struct {
		ns   *topology.NetNS
		name string
	}
	var all []netns
	for _, n := range l.Nodes {
		all = append(all, netns{n.NS, n.Name})
		for _, p := range n.pods() {
			all = append(all, netns{p.NS, p.Name})
		}
	}
	if e := l.External; e != nil {
		all = append(all, netns{e.NS, e.Name})
	}
	if l.Wire != nil {
		all = append(all, netns{l.Wire.NS, l.Wire.Name})
	}
	for _, x := range all {
		if err := withHandle(x.ns, x.name, func(h *netlink.Handle) error { return waitNoTentative(ctx, h, x.name) }); err != nil {
			return err
		}
	}
	return nil
}

// waitNoTentative waits until no IPv6 address h lists is tentative.
func waitNoTentative(ctx context.Context, h *netlink.Handle, ns string) error {
	for {
		addrs, err := h.AddrList(nil, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("list the IPv6 addresses in %s: %w", ns, err)
		}
		tentative := ""
		for _, a := range addrs {
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				tentative = a.IPNet.String()
				break
			}
		}
		if tentative == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s in %s to leave duplicate address detection: %w", tentative, ns, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func waitUp(ctx context.Context, ns *topology.NetNS, nsName string, links ...string) error {
	return withHandle(ns, nsName, func(h *netlink.Handle) error {
		for _, name := range links {
			for {
				l, err := h.LinkByName(name)
				if err != nil {
					return fmt.Errorf("read %s in %s: %w", name, nsName, err)
				}
				if l.Attrs().OperState == netlink.OperUp {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("wait for %s in %s to come up (operstate %s): %w", name, nsName, l.Attrs().OperState, ctx.Err())
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		return nil
	})
}

// waitGateway6 waits until every host veth of the routed node n has the
// pods' IPv6 gateway RoutedGateway6 as a usable (not tentative) link-local
// address. The kernel adds it only once the veth is operationally up, and
// while it is tentative the veth answers no neighbour solicitation for it:
// the pods' first IPv6 packets would wait for their gateway.
func (n *Node) waitGateway6(ctx context.Context) error {
	return withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		for _, p := range n.pods() {
			if err := waitUsableAddr(ctx, h, p.HostVeth, n.Name, RoutedGateway6); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitUsableAddr waits until hasUsableAddr.
func waitUsableAddr(ctx context.Context, h *netlink.Handle, link, ns string, ip netip.Addr) error {
	for {
		ok, err := hasUsableAddr(h, link, ns, ip)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s on %s in %s to be usable: %w", ip, link, ns, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// hasUsableAddr reports whether the link called link has the IPv6 address
// ip, neither tentative nor failed duplicate address detection.
func hasUsableAddr(h *netlink.Handle, link, ns string, ip netip.Addr) (bool, error) {
	l, err := h.LinkByName(link)
	if err != nil {
		return false, fmt.Errorf("read %s in %s: %w", link, ns, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return false, fmt.Errorf("list the IPv6 addresses of %s in %s: %w", link, ns, err)
	}
	for _, a := range addrs {
		if a.IP.Equal(ip.AsSlice()) {
			return a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0, nil
		}
	}
	return false, nil
}
