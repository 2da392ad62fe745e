package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// setupService loads the Service's rules into every node, as kube-proxy
// in mode writes them: kube-proxy's rules are on every node of a cluster.
func (l *Lab) setupService(ctx context.Context, mode ServiceMode) error {
	l.Service, l.ServiceMode = ServiceAddr, mode.orDefault()
	eps := l.ServiceEndpoints()
	for _, n := range l.Nodes {
		var err error
		if l.ServiceMode == ServiceNFTables {
			err = l.nft(ctx, n.NSPath, n.Name, nftablesServiceRules(ServiceAddr, eps))
		} else {
			err = l.restore(ctx, n.NSPath, n.Name, iptablesServiceRules(ServiceAddr, eps))
		}
		if err != nil {
			return fmt.Errorf("set up service %s (%s mode): %w", ServiceAddr, l.ServiceMode, err)
		}
	}
	return nil
}

// nft loads rules with `nft -f -` in the lab namespace at nsPath (called
// name in errors), as one transaction.
func (l *Lab) nft(ctx context.Context, nsPath, name string, rules []byte) error {
	bin, err := lookPath("nft", "nftables")
	if err != nil {
		return fmt.Errorf("load nftables rules in %s: %w", name, err)
	}
	cmd := l.Command(ctx, nsPath, bin, "-f", "-")
	cmd.Stdin = bytes.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load nftables rules in %s: %w%s", name, err, QuoteOutput(out))
	}
	return nil
}

// setupExternal creates the external host's namespace, joins it to node 1
// with a veth pair (ExternalLink in node 1, UplinkName in the host), gives
// both ends their /24 addresses and loads node 1's MASQUERADE rule. The
// host has no route to the pod network: only masqueraded traffic gets an
// answer, as from a host on the internet.
func (l *Lab) setupExternal(ctx context.Context) error {
	name := extNSName(l.Name)
	ns, err := l.newNetNS(name)
	if err != nil {
		return err
	}
	l.External = &External{Name: name, NSPath: filepath.Join(NamedNetNSDir, name), NS: ns, Addr: ExternalAddr}
	n1 := l.Nodes[0]
	err = withHandle(n1.NS, n1.Name, func(h *netlink.Handle) error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: ExternalLink},
			PeerName:      UplinkName,
			PeerNamespace: netlink.NsFd(ns.Fd()),
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s (peer %s in %s) in %s: %w", ExternalLink, UplinkName, name, n1.Name, err)
		}
		return addrUp(h, n1.Name, ExternalLink, ExternalGateway)
	})
	if err != nil {
		return err
	}
	err = withHandle(ns, name, func(h *netlink.Handle) error {
		if err := linkUp(h, "lo", name); err != nil {
			return err
		}
		return addrUp(h, name, UplinkName, ExternalAddr)
	})
	if err != nil {
		return err
	}
	return l.restore(ctx, n1.NSPath, n1.Name, masqueradeRules())
}

// addrUp gives the link called link addr/24 and sets it up.
func addrUp(h *netlink.Handle, ns, link string, addr netip.Addr) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", link, ns, err)
	}
	a := &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(24, 32)}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: a}); err != nil {
		return fmt.Errorf("add address %s to %s in %s: %w", a, link, ns, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in %s: %w", link, ns, err)
	}
	return nil
}

// restore appends rules with iptables-restore --noflush in the lab
// namespace at nsPath (called name in errors).
func (l *Lab) restore(ctx context.Context, nsPath, name string, rules []byte) error {
	return l.restoreWith(ctx, "iptables-restore", nsPath, name, rules)
}

// restore6 is restore for IPv6, with ip6tables-restore.
func (l *Lab) restore6(ctx context.Context, nsPath, name string, rules []byte) error {
	return l.restoreWith(ctx, "ip6tables-restore", nsPath, name, rules)
}

func (l *Lab) restoreWith(ctx context.Context, prog, nsPath, name string, rules []byte) error {
	bin, err := lookPath(prog, "iptables")
	if err != nil {
		return fmt.Errorf("load rules in %s: %w", name, err)
	}
	cmd := l.Command(ctx, nsPath, bin, "-w", "--noflush")
	cmd.Stdin = bytes.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load rules in %s: %w%s", name, err, QuoteOutput(out))
	}
	return nil
}
