package nodestate

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// nsState is one namespace being taken: its netlink handle (made inside
// it) and what the path says of it.
type nsState struct {
	dir      string // node, pod: the directory of its files
	ns       *topology.NetNS
	h        *netlink.Handle
	others   []*topology.NetNS // the snapshot's other namespaces, for netnsids
	points   map[int][]string  // ifindex -> ids of the path's points on it
	devNames []string          // the names of those devices, from the path
	names    map[int]string    // ifindex -> name, from the link dump
}

// takeNetlink adds the namespace's links, addresses, routes, rules,
// neighbours and FDB entries; a dump that fails is a gap, and the next
// one is still taken.
func (s *Snapshot) takeNetlink(st *nsState) {
	links, err := topology.RetryDump(st.h.LinkList)
	if err != nil {
		s.gap(st.dir+"/links.json", "", fmt.Errorf("dump links in %s: %w", st.ns, err))
	}
	st.names = make(map[int]string, len(links))
	for _, l := range links {
		st.names[l.Attrs().Index] = l.Attrs().Name
	}
	if err == nil {
		s.addJSON(st.dir+"/links.json", "links (ip -d link): type, master, MTU, flags, MAC, operstate, veth peer, VXLAN settings, counters; points names the path's", st.links(links))
	}
	s.takeAddresses(st)
	s.takeRoutes(st)
	s.takeRules(st)
	s.takeNeighbours(st)
	s.takeFDB(st)
}

// links converts the link dump, by index.
func (st *nsState) links(links []netlink.Link) Links {
	out := Links{NetNS: st.ns.ID(), Links: []Link{}}
	for _, o := range st.others {
		if id, err := st.h.GetNetNsIdByFd(o.Fd()); err == nil && id >= 0 {
			if out.NetNSIDs == nil {
				out.NetNSIDs = map[string]int{}
			}
			out.NetNSIDs[o.ID()] = id
		}
	}
	for _, l := range links {
		out.Links = append(out.Links, st.link(l))
	}
	slices.SortFunc(out.Links, func(a, b Link) int { return a.Index - b.Index })
	return out
}

func (st *nsState) link(l netlink.Link) Link {
	a := l.Attrs()
	out := Link{
		Index: a.Index, Name: a.Name, Type: l.Type(), AltNames: a.AltNames, Alias: a.Alias,
		MTU: a.MTU, Flags: flagNames(a.Flags), MAC: a.HardwareAddr.String(), OperState: a.OperState.String(),
		TxQLen: a.TxQLen, Points: st.points[a.Index], Promisc: a.Promisc != 0,
	}
	if a.MasterIndex != 0 {
		out.Master = st.ref(a.MasterIndex)
	}
	if a.ParentIndex != 0 {
		out.Link = &LinkRef{Index: a.ParentIndex}
		if a.NetNsID < 0 {
			out.Link = st.ref(a.ParentIndex)
		}
	}
	if a.NetNsID >= 0 {
		id := a.NetNsID
		out.LinkNetNSID = &id
	}
	if s := a.Statistics; s != nil {
		out.Stats = &LinkStats{
			RxPackets: s.RxPackets, RxBytes: s.RxBytes, RxErrors: s.RxErrors, RxDropped: s.RxDropped,
			TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxErrors: s.TxErrors, TxDropped: s.TxDropped,
		}
	}
	switch l := l.(type) {
	case *netlink.Vxlan:
		out.VXLAN = &VXLAN{
			ID: l.VxlanId, Port: l.Port, Local: ipString(l.SrcAddr), Group: ipString(l.Group), TTL: l.TTL,
			Learning: l.Learning, FlowBased: l.FlowBased, L2Miss: l.L2miss, L3Miss: l.L3miss, Proxy: l.Proxy, UDPCSum: l.UDPCSum,
		}
		if l.VtepDevIndex != 0 {
			out.VXLAN.Dev = st.ref(l.VtepDevIndex)
		}
	case *netlink.Bridge:
		if l.VlanFiltering != nil || l.AgeingTime != nil {
			out.Bridge = &Bridge{VlanFiltering: l.VlanFiltering, AgeingTime: l.AgeingTime}
		}
	case *netlink.Macvlan:
		out.Mode = macvlanModes[l.Mode]
	case *netlink.IPVlan:
		out.Mode = ipvlanModes[l.Mode]
	}
	return out
}

var macvlanModes = map[netlink.MacvlanMode]string{
	netlink.MACVLAN_MODE_PRIVATE: "private", netlink.MACVLAN_MODE_VEPA: "vepa", netlink.MACVLAN_MODE_BRIDGE: "bridge",
	netlink.MACVLAN_MODE_PASSTHRU: "passthru", netlink.MACVLAN_MODE_SOURCE: "source",
}

var ipvlanModes = map[netlink.IPVlanMode]string{netlink.IPVLAN_MODE_L2: "l2", netlink.IPVLAN_MODE_L3: "l3", netlink.IPVLAN_MODE_L3S: "l3s"}

// ref names a device of this namespace.
func (st *nsState) ref(index int) *LinkRef {
	return &LinkRef{Index: index, Name: st.names[index]}
}

// flagNames spells interface flags as ip does, lower case: up,
// broadcast, multicast, running.
func flagNames(f net.Flags) []string {
	if f == 0 {
		return []string{}
	}
	return strings.Split(f.String(), "|")
}

// ipString is ip as text, or "" when there is none.
func ipString(ip net.IP) string {
	if len(ip) == 0 || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

// familyName is an address family as ip names it.
func familyName(f int) string {
	switch f {
	case unix.AF_INET:
		return "inet"
	case unix.AF_INET6:
		return "inet6"
	case unix.AF_BRIDGE:
		return "bridge"
	}
	return fmt.Sprintf("family %d", f)
}

// ipFamily is ip's family, as familyName names it.
func ipFamily(ip net.IP) string {
	if ip.To4() != nil {
		return "inet"
	}
	return "inet6"
}

// bitNames returns the names of the bits set in v, in names' order, and
// any bit left unnamed as 0xN.
func bitNames(v int, names []bitName) []string {
	var out []string
	for _, n := range names {
		if v&n.bit != 0 {
			out = append(out, n.name)
			v &^= n.bit
		}
	}
	if v != 0 {
		out = append(out, fmt.Sprintf("0x%x", v))
	}
	return out
}

type bitName struct {
	bit  int
	name string
}
