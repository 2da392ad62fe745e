package nodestate

import (
	"fmt"
	"strconv"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// takeAddresses adds addresses.json: every address of both families.
func (s *Snapshot) takeAddresses(st *nsState) {
	name := st.dir + "/addresses.json"
	addrs, err := topology.RetryDump(func() ([]netlink.Addr, error) { return st.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		s.gap(name, "", fmt.Errorf("dump addresses in %s: %w", st.ns, err))
		return
	}
	out := Addresses{NetNS: st.ns.ID(), Addresses: []Address{}}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		addr := Address{
			Index: a.LinkIndex, Interface: st.names[a.LinkIndex], Family: ipFamily(a.IP), Address: a.IPNet.String(),
			Scope: scopeName(a.Scope), Label: a.Label, Broadcast: ipString(a.Broadcast), Flags: bitNames(a.Flags, addrFlags),
		}
		if a.Peer != nil {
			addr.Peer = a.Peer.String()
		}
		out.Addresses = append(out.Addresses, addr)
	}
	sortAddresses(out.Addresses)
	s.addJSON(name, "addresses of every device (ip addr)", out)
}

var addrFlags = []bitName{
	{unix.IFA_F_SECONDARY, "secondary"}, {unix.IFA_F_NODAD, "nodad"}, {unix.IFA_F_OPTIMISTIC, "optimistic"},
	{unix.IFA_F_DADFAILED, "dadfailed"}, {unix.IFA_F_HOMEADDRESS, "home"}, {unix.IFA_F_DEPRECATED, "deprecated"},
	{unix.IFA_F_TENTATIVE, "tentative"}, {unix.IFA_F_PERMANENT, "permanent"}, {unix.IFA_F_MANAGETEMPADDR, "mngtmpaddr"},
	{unix.IFA_F_NOPREFIXROUTE, "noprefixroute"}, {unix.IFA_F_MCAUTOJOIN, "autojoin"}, {unix.IFA_F_STABLE_PRIVACY, "stable-privacy"},
}

// scopeName names a route or address scope as ip does.
func scopeName(scope int) string {
	switch scope {
	case unix.RT_SCOPE_UNIVERSE:
		return "global"
	case unix.RT_SCOPE_SITE:
		return "site"
	case unix.RT_SCOPE_LINK:
		return "link"
	case unix.RT_SCOPE_HOST:
		return "host"
	case unix.RT_SCOPE_NOWHERE:
		return "nowhere"
	}
	return strconv.Itoa(scope)
}

// takeRoutes adds routes.json: the routes of every table (ip route show
// table all), both families, cached routes left out.
func (s *Snapshot) takeRoutes(st *nsState) {
	name := st.dir + "/routes.json"
	out := Routes{NetNS: st.ns.ID(), Routes: []Route{}}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := topology.RetryDump(func() ([]netlink.Route, error) {
			return st.h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			s.gap(name, "", fmt.Errorf("dump %s routes in %s: %w", familyName(family), st.ns, err))
			return
		}
		for _, r := range routes {
			out.Routes = append(out.Routes, st.route(family, r))
		}
	}
	sortRoutes(out.Routes)
	s.addJSON(name, "routes of every table, main and local included (ip route show table all)", out)
}

func (st *nsState) route(family int, r netlink.Route) Route {
	out := Route{
		Family: familyName(family), Table: r.Table, Type: routeTypeName(r.Type), Dst: "default",
		Gateway: ipString(r.Gw), Src: ipString(r.Src), Protocol: r.Protocol.String(), Scope: scopeName(int(r.Scope)),
		Metric: r.Priority, MTU: r.MTU, Flags: bitNames(r.Flags, nexthopFlags),
	}
	if r.Dst != nil {
		out.Dst = r.Dst.String()
	}
	if r.Via != nil {
		out.Via = r.Via.String()
	}
	if r.LinkIndex != 0 {
		out.Dev = st.ref(r.LinkIndex)
	}
	for _, nh := range r.MultiPath {
		hop := Nexthop{Gateway: ipString(nh.Gw), Weight: nh.Hops + 1, Flags: bitNames(nh.Flags, nexthopFlags)}
		if nh.LinkIndex != 0 {
			hop.Dev = st.ref(nh.LinkIndex)
		}
		out.Nexthops = append(out.Nexthops, hop)
	}
	return out
}

var nexthopFlags = []bitName{
	{unix.RTNH_F_DEAD, "dead"}, {unix.RTNH_F_PERVASIVE, "pervasive"}, {unix.RTNH_F_ONLINK, "onlink"},
	{unix.RTNH_F_OFFLOAD, "offload"}, {unix.RTNH_F_LINKDOWN, "linkdown"}, {unix.RTNH_F_UNRESOLVED, "unresolved"},
}

// routeTypeName names a route type (rtm_type) as ip does.
func routeTypeName(t int) string {
	names := map[int]string{
		unix.RTN_UNSPEC: "none", unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BROADCAST: "broadcast",
		unix.RTN_ANYCAST: "anycast", unix.RTN_MULTICAST: "multicast", unix.RTN_BLACKHOLE: "blackhole",
		unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw",
		unix.RTN_NAT: "nat", unix.RTN_XRESOLVE: "xresolve",
	}
	if n, ok := names[t]; ok {
		return n
	}
	return strconv.Itoa(t)
}

// takeRules adds rules.json: the policy routing rules of both families.
func (s *Snapshot) takeRules(st *nsState) {
	name := st.dir + "/rules.json"
	out := Rules{NetNS: st.ns.ID(), Rules: []Rule{}}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := topology.RetryDump(func() ([]netlink.Rule, error) { return st.h.RuleList(family) })
		if err != nil {
			s.gap(name, "", fmt.Errorf("dump %s rules in %s: %w", familyName(family), st.ns, err))
			return
		}
		for _, r := range rules {
			out.Rules = append(out.Rules, rule(family, r))
		}
	}
	sortRules(out.Rules)
	s.addJSON(name, "policy routing rules (ip rule)", out)
}

func rule(family int, r netlink.Rule) Rule {
	out := Rule{
		Family: familyName(family), Priority: max(r.Priority, 0), Invert: r.Invert, Src: "all", IIF: r.IifName, OIF: r.OifName,
		TOS: r.Tos, IPProto: r.IPProto, Table: r.Table, Goto: max(r.Goto, 0), Action: ruleAction(r), Protocol: int(r.Protocol),
	}
	if r.SuppressPrefixlen >= 0 { // netlink's -1: not set; 0 means something
		n := r.SuppressPrefixlen
		out.SuppressPrefixlen = &n
	}
	if r.Src != nil {
		out.Src = r.Src.String()
	}
	if r.Dst != nil {
		out.Dst = r.Dst.String()
	}
	if r.Mark != 0 || r.Mask != nil {
		out.FwMark = fmt.Sprintf("0x%x", r.Mark)
		if r.Mask != nil {
			out.FwMark += fmt.Sprintf("/0x%x", *r.Mask)
		}
	}
	out.Sport, out.Dport = portRange(r.Sport), portRange(r.Dport)
	return out
}

func portRange(p *netlink.RulePortRange) string {
	switch {
	case p == nil:
		return ""
	case p.Start == p.End:
		return strconv.Itoa(int(p.Start))
	}
	return fmt.Sprintf("%d-%d", p.Start, p.End)
}

// ruleAction names a rule's action as ip rule does. netlink leaves a
// dumped rule's type (its action) unset: a goto or a table then says it.
func ruleAction(r netlink.Rule) string {
	switch {
	case r.Type == 0 && r.Goto > 0:
		return "goto"
	case r.Type == 0 && r.Table > 0:
		return "lookup"
	case r.Type == 0:
		return ""
	}
	switch int(r.Type) {
	case unix.FR_ACT_TO_TBL:
		return "lookup"
	case unix.FR_ACT_GOTO:
		return "goto"
	case unix.FR_ACT_NOP:
		return "nop"
	case unix.FR_ACT_BLACKHOLE:
		return "blackhole"
	case unix.FR_ACT_UNREACHABLE:
		return "unreachable"
	case unix.FR_ACT_PROHIBIT:
		return "prohibit"
	}
	return strconv.Itoa(int(r.Type))
}
