package topology

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dnat returns the address the node's conntrack shows target was rewritten
// to for the probes' flow from src (any source when src is invalid): ICMP
// echo for the zero Flow, else TCP or UDP to the flow's port; a
// Service's backend after kube-proxy's (or the lab's) DNAT. It returns
// false when conntrack has no such entry, or the entry was not
// destination-translated. An entry exists only once a packet went that
// way: the caller sends one probe before Discover (cmd/cnitrace does).
//
// Conntrack is read on every discovery, whatever the target: a Service
// address looks like any other, and only this table says the node rewrites
// it. The kernel sends only the flow's entries (Conntrack.List), so the
// cost does not grow with the table, and a netns with an empty table is
// not dumped at all. nfnetlink refuses every request,
// dumps included, without CAP_NET_ADMIN in the node netns's user
// namespace; the error names it.
func (d *discovery) dnat(src netip.Addr) (netip.Addr, bool, error) {
	ct, err := d.conntrack()
	if err != nil {
		return netip.Addr{}, false, err
	}
	if ct != d.ct {
		defer ct.Close()
	}
	if fl, ok := d.lookUp(ct, src); ok {
		return translated(fl, d.target)
	}
	flows, err := ct.List(d.flow.filter(d.target, src))
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("read conntrack in %s: %w", d.node, err)
	}
	for _, f := range flows {
		fwdSrc, _ := netip.AddrFromSlice(f.Forward.SrcIP)
		fwdDst, _ := netip.AddrFromSlice(f.Forward.DstIP)
		replySrc, ok := netip.AddrFromSlice(f.Reverse.SrcIP)
		if !d.flow.matches(f.Forward.Protocol, f.Forward.DstPort) || fwdDst.Unmap() != d.target || (src.IsValid() && fwdSrc.Unmap() != src) || !ok {
			continue
		}
		if replySrc.Unmap() != d.target {
			return replySrc.Unmap(), true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// lookUp looks the probes' own entry up by its tuple (the warm-up's echo
// id, or its TCP or UDP source port): one hash lookup where a dump walks
// the kernel's whole table. Without one (a conntrack zone of its own, a
// warm-up that never left, a flow whose id or port is unknown) or on any
// error (a refused request is refused again, and reported, by the dump),
// it returns false and the dump finds what it always found.
func (d *discovery) lookUp(ct *Conntrack, src netip.Addr) (*netlink.ConntrackFlow, bool) {
	var fl *netlink.ConntrackFlow
	var ok bool
	var err error
	switch {
	case !src.IsValid():
		return nil, false
	case d.flow.Proto == 0 && d.flow.EchoID != 0:
		fl, ok, err = ct.echo(src, d.target, d.flow.EchoID)
	case d.flow.Proto != 0 && d.flow.SrcPort != 0:
		fl, ok, err = ct.portFlow(d.flow.Proto, src, d.flow.SrcPort, d.target, d.flow.Port)
	}
	return fl, ok && err == nil
}

// conntrack returns the node's conntrack: the one opened with the
// discovery's handles, else one opened now, which the caller closes.
func (d *discovery) conntrack() (*Conntrack, error) {
	switch {
	case d.ct != nil:
		return d.ct, nil
	case d.ctErr != nil:
		return nil, d.ctErr
	}
	return OpenConntrack(d.node)
}

// translated returns where the entry fl of a flow to target says the node
// sent it: the reply's source, when that is not target.
func translated(fl *netlink.ConntrackFlow, target netip.Addr) (netip.Addr, bool, error) {
	replySrc, ok := netip.AddrFromSlice(fl.Reverse.SrcIP)
	if !ok || replySrc.Unmap() == target {
		return netip.Addr{}, false, nil
	}
	return replySrc.Unmap(), true, nil
}

// filter selects the conntrack entries of the flow from src (any source
// when src is invalid) to target, in target's family: ICMP echo there
// (ICMP or ICMPv6) for the zero Flow.
func (f Flow) filter(target, src netip.Addr) ConntrackFilter {
	fam := uint8(family(target))
	cf := ConntrackFilter{Family: fam, Proto: f.Proto, Port: f.Port}
	if f.Proto == 0 {
		cf.Proto = unix.IPPROTO_ICMP
		if fam == unix.AF_INET6 {
			cf.Proto = unix.IPPROTO_ICMPV6
		}
	}
	cf.Dst, _ = FamilyAddr(fam, target)
	cf.Src, _ = FamilyAddr(fam, src)
	return cf
}

func icmpEcho(proto uint8) bool { return proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6 }

// matches reports whether a conntrack entry's protocol and original
// destination port are the flow's.
func (f Flow) matches(proto uint8, dport uint16) bool {
	if f.Proto == 0 {
		return icmpEcho(proto)
	}
	return proto == f.Proto && dport == f.Port
}
