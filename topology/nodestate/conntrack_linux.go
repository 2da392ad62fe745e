package nodestate

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// Flows reads the node's conntrack entries of the probes' flows. It is
// opened at the start of a run, when the node's namespace is entered for
// everything else, and read at its end (Take), when the entries hold what
// the probes did: the DNAT they went through, and their counters.
type Flows struct {
	ct      *topology.Conntrack // in the node's namespace
	netns   string
	flow    topology.Flow // what the probes were: ICMP echo, or TCP or UDP to a port
	sources []netip.Addr
	targets []netip.Addr
}

// OpenFlows opens the node's conntrack for the probes' flows along path:
// ICMP echo (flow's zero value), or TCP or UDP to flow.Port, between the
// path's source address and its target or the target's translated address
// (a Service's backend). Close it when done.
func OpenFlows(node *topology.NetNS, path *topology.Path, flow topology.Flow) (*Flows, error) {
	ct, err := topology.OpenConntrack(node)
	if err != nil {
		return nil, err
	}
	f := &Flows{ct: ct, netns: node.ID(), flow: flow, sources: []netip.Addr{}, targets: []netip.Addr{}}
	add := func(to *[]netip.Addr, a netip.Addr) {
		if a = a.Unmap(); a.IsValid() && !slices.Contains(*to, a) {
			*to = append(*to, a)
		}
	}
	add(&f.sources, path.Source.Addr)
	add(&f.targets, path.Target)
	add(&f.targets, path.Translated)
	return f, nil
}

// Take reads the conntrack entries of the flows' protocol (and port) from
// their source, in the families of the flows' addresses, and returns
// conntrack.json with the matching entries only. The kernel sends only
// those (topology.Conntrack.List), however big the table. nfnetlink
// refuses the dump without CAP_NET_ADMIN in the node namespace's user
// namespace: the error is a *topology.CapabilityError then.
func (f *Flows) Take() (File, error) {
	out := Conntrack{NetNS: f.netns, Sources: addrStrings(f.sources), Targets: addrStrings(f.targets), Flows: []Flow{}}
	var families []netlink.InetFamily
	for _, a := range slices.Concat(f.sources, f.targets) {
		if fam := inetFamily(a); !slices.Contains(families, fam) {
			families = append(families, fam)
		}
	}
	slices.Sort(families)
	for _, fam := range families {
		flows, err := f.ct.List(f.filter(fam))
		if err != nil {
			return File{}, fmt.Errorf("read conntrack in %s: %w", f.netns, topology.NeedsCapability(err, "CAP_NET_ADMIN"))
		}
		for _, fl := range flows {
			if f.matches(fl) {
				out.Flows = append(out.Flows, flow(fam, fl))
			}
		}
	}
	sortFlows(out.Flows)
	b, err := encodeJSON(out)
	if err != nil {
		return File{}, err
	}
	return File{Name: "node/conntrack.json", About: "the node's conntrack entries of the probes' flows (their protocol, between the source and the target or its translation), taken after the probes", Data: b}, nil
}

// Close releases the netlink socket. It is safe to call more than once.
func (f *Flows) Close() {
	if f != nil && f.ct != nil {
		f.ct.Close()
		f.ct = nil
	}
}

// filter selects, in fam, the entries of the probes' protocol (ICMP echo
// is fam's ICMP), to their port for TCP and UDP, and from their source
// when there is one. The targets are left to matches: an entry is theirs
// by its original destination or its reply source, and a dump filter
// only ANDs.
func (f *Flows) filter(fam netlink.InetFamily) topology.ConntrackFilter {
	cf := topology.ConntrackFilter{Family: uint8(fam), Proto: f.flow.Proto, Port: f.flow.Port}
	if f.flow.Proto == 0 {
		cf.Proto = unix.IPPROTO_ICMP
		if fam == unix.AF_INET6 {
			cf.Proto = unix.IPPROTO_ICMPV6
		}
	}
	if len(f.sources) == 1 {
		cf.Src, _ = topology.FamilyAddr(uint8(fam), f.sources[0])
	}
	return cf
}

// matches says whether fl is a flow of the probes' protocol (and, for TCP
// and UDP, original destination port) from one of the sources whose
// original destination or reply source is one of the targets.
func (f *Flows) matches(fl *netlink.ConntrackFlow) bool {
	switch f.flow.Proto {
	case 0:
		if fl.Forward.Protocol != unix.IPPROTO_ICMP && fl.Forward.Protocol != unix.IPPROTO_ICMPV6 {
			return false
		}
	default:
		if fl.Forward.Protocol != f.flow.Proto || fl.Forward.DstPort != f.flow.Port {
			return false
		}
	}
	src, _ := netip.AddrFromSlice(fl.Forward.SrcIP)
	dst, _ := netip.AddrFromSlice(fl.Forward.DstIP)
	replySrc, _ := netip.AddrFromSlice(fl.Reverse.SrcIP)
	return slices.Contains(f.sources, src.Unmap()) &&
		(slices.Contains(f.targets, dst.Unmap()) || slices.Contains(f.targets, replySrc.Unmap()))
}

func flow(fam netlink.InetFamily, fl *netlink.ConntrackFlow) Flow {
	proto := "icmp"
	switch fl.Forward.Protocol {
	case unix.IPPROTO_ICMPV6:
		proto = "ipv6-icmp"
	case unix.IPPROTO_TCP:
		proto = "tcp"
	case unix.IPPROTO_UDP:
		proto = "udp"
	}
	return Flow{
		Family: familyName(int(fam)), Protocol: proto, Mark: fl.Mark, Zone: fl.Zone, Timeout: fl.TimeOut,
		Original: Tuple{Src: ipString(fl.Forward.SrcIP), Dst: ipString(fl.Forward.DstIP), SrcPort: fl.Forward.SrcPort, DstPort: fl.Forward.DstPort, Packets: fl.Forward.Packets, Bytes: fl.Forward.Bytes},
		Reply:    Tuple{Src: ipString(fl.Reverse.SrcIP), Dst: ipString(fl.Reverse.DstIP), SrcPort: fl.Reverse.SrcPort, DstPort: fl.Reverse.DstPort, Packets: fl.Reverse.Packets, Bytes: fl.Reverse.Bytes},
	}
}

func inetFamily(a netip.Addr) netlink.InetFamily {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
