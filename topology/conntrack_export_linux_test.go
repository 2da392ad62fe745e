package topology

import (
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ListCounted is List that also says how many entries the kernel sent.
func (c *Conntrack) ListCounted(f ConntrackFilter) ([]*netlink.ConntrackFlow, int, error) {
	d, err := RetryDump(func() (dumpResult, error) { return c.dump(f) })
	return d.flows, d.received, err
}

// Entries is how many entries the netns's conntrack holds, as List asks.
func (c *Conntrack) Entries() (uint32, bool) { return c.entries() }

// Echo is the lookup of one ICMP echo flow's entry by its tuple.
func (c *Conntrack) Echo(src, dst netip.Addr, id uint16) (*netlink.ConntrackFlow, bool, error) {
	return c.echo(src, dst, id)
}

// PortFlow is the lookup of one TCP or UDP flow's entry by its tuple.
func (c *Conntrack) PortFlow(proto uint8, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) (*netlink.ConntrackFlow, bool, error) {
	return c.portFlow(proto, src, sport, dst, dport)
}

// DNAT is the discovery's conntrack lookup (dnat) for flow to target from
// src, in node.
func DNAT(node *NetNS, target netip.Addr, flow Flow, src netip.Addr) (netip.Addr, bool, error) {
	d := discovery{node: node, target: target, flow: flow}
	return d.dnat(src)
}

// FlowFilter is the filter discovery reads conntrack with.
func FlowFilter(f Flow, target, src netip.Addr) ConntrackFilter { return f.filter(target, src) }
