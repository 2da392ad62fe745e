package nodestate

// The JSON files of a namespace. Every file is an object naming the
// namespace it was taken in (net:[INODE], as the report and path.json name
// them) and holding one sorted list. Addresses are strings as ip(8) prints
// them; absent values are left out.

// LinkRef names a link by index, and by name when it is in the same
// namespace.
type LinkRef struct {
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
}

// Links is links.json.
type Links struct {
	NetNS string `json:"netns"`
	// NetNSIDs maps the other namespaces of the snapshot (the pod's, the
	// node's) to the id this namespace knows them by: the link_netnsid of
	// a veth whose peer is there. Absent when it knows them by none.
	NetNSIDs map[string]int `json:"netnsids,omitempty"`
	Links    []Link         `json:"links"` // by index
}

// Link is one network device, as ip -d link shows it.
type Link struct {
	Index     int      `json:"index"`
	Name      string   `json:"name"`
	Type      string   `json:"type"` // veth, bridge, vxlan, device, ...
	AltNames  []string `json:"alt_names,omitempty"`
	Alias     string   `json:"alias,omitempty"`
	MTU       int      `json:"mtu"`
	Flags     []string `json:"flags"` // up, broadcast, multicast, ...
	MAC       string   `json:"mac,omitempty"`
	OperState string   `json:"operstate"`
	// Master is the bridge (or bond, VRF) the device is enslaved to.
	Master *LinkRef `json:"master,omitempty"`
	// Link is IFLA_LINK: a veth's peer, a macvlan's or vlan's parent. Its
	// index is in the namespace LinkNetNSID names (see Links.NetNSIDs),
	// this one when LinkNetNSID is absent.
	Link        *LinkRef `json:"link,omitempty"`
	LinkNetNSID *int     `json:"link_netnsid,omitempty"`
	TxQLen      int      `json:"txqlen"`
	// Points are the ids of the path's points on this device (p0, p1...).
	Points  []string   `json:"points,omitempty"`
	VXLAN   *VXLAN     `json:"vxlan,omitempty"`
	Bridge  *Bridge    `json:"bridge,omitempty"`
	Mode    string     `json:"mode,omitempty"` // macvlan, ipvlan
	Stats   *LinkStats `json:"stats,omitempty"`
	Promisc bool       `json:"promisc,omitempty"`
}

// VXLAN is a VXLAN device's configuration.
type VXLAN struct {
	ID        int      `json:"id"`
	Port      int      `json:"port"`
	Local     string   `json:"local,omitempty"`
	Group     string   `json:"group,omitempty"` // or the remote, for a point-to-point device
	Dev       *LinkRef `json:"dev,omitempty"`   // the underlay device
	TTL       int      `json:"ttl,omitempty"`
	Learning  bool     `json:"learning"`
	FlowBased bool     `json:"external,omitempty"` // collect metadata: no remote in netlink (Cilium)
	L2Miss    bool     `json:"l2miss,omitempty"`
	L3Miss    bool     `json:"l3miss,omitempty"`
	Proxy     bool     `json:"proxy,omitempty"`
	UDPCSum   bool     `json:"udpcsum,omitempty"`
}

// Bridge is a bridge's configuration, where netlink reports it.
type Bridge struct {
	VlanFiltering *bool   `json:"vlan_filtering,omitempty"`
	AgeingTime    *uint32 `json:"ageing_time,omitempty"` // centiseconds
}

// LinkStats are a device's counters when the snapshot was taken.
type LinkStats struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// Addresses is addresses.json.
type Addresses struct {
	NetNS     string    `json:"netns"`
	Addresses []Address `json:"addresses"` // by device index, then family, then address
}

// Address is one address of a device.
type Address struct {
	Index     int      `json:"index"`
	Interface string   `json:"interface"`
	Family    string   `json:"family"`  // inet, inet6
	Address   string   `json:"address"` // 10.244.1.2/24
	Scope     string   `json:"scope"`   // universe (global), link, host
	Label     string   `json:"label,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	Broadcast string   `json:"broadcast,omitempty"`
	Flags     []string `json:"flags,omitempty"` // permanent, nodad, noprefixroute, ...
}

// Routes is routes.json: every table, main and local included.
type Routes struct {
	NetNS  string  `json:"netns"`
	Routes []Route `json:"routes"` // by family, table, destination, metric
}

// Route is one route.
type Route struct {
	Family   string    `json:"family"`
	Table    int       `json:"table"`
	Type     string    `json:"type"` // unicast, local, broadcast, blackhole, ...
	Dst      string    `json:"dst"`  // default, or a prefix
	Gateway  string    `json:"gateway,omitempty"`
	Via      string    `json:"via,omitempty"`
	Dev      *LinkRef  `json:"dev,omitempty"`
	Src      string    `json:"src,omitempty"` // the preferred source
	Protocol string    `json:"protocol"`
	Scope    string    `json:"scope"`
	Metric   int       `json:"metric,omitempty"`
	MTU      int       `json:"mtu,omitempty"`
	Flags    []string  `json:"flags,omitempty"` // onlink, ...
	Nexthops []Nexthop `json:"nexthops,omitempty"`
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Gateway string   `json:"gateway,omitempty"`
	Dev     *LinkRef `json:"dev,omitempty"`
	Weight  int      `json:"weight"`
	Flags   []string `json:"flags,omitempty"`
}

// Rules is rules.json: the policy routing rules of both families.
type Rules struct {
	NetNS string `json:"netns"`
	Rules []Rule `json:"rules"` // by family, then priority
}

// Rule is one policy routing rule, as ip rule shows it.
type Rule struct {
	Family            string `json:"family"`
	Priority          int    `json:"priority"`
	Invert            bool   `json:"not,omitempty"`
	Src               string `json:"from"` // all, or a prefix
	Dst               string `json:"to,omitempty"`
	IIF               string `json:"iif,omitempty"`
	OIF               string `json:"oif,omitempty"`
	FwMark            string `json:"fwmark,omitempty"` // 0xMARK/0xMASK
	TOS               uint   `json:"tos,omitempty"`
	IPProto           int    `json:"ipproto,omitempty"`
	Sport             string `json:"sport,omitempty"`
	Dport             string `json:"dport,omitempty"`
	Table             int    `json:"table,omitempty"`
	Goto              int    `json:"goto,omitempty"`
	SuppressPrefixlen *int   `json:"suppress_prefixlength,omitempty"`
	Action            string `json:"action,omitempty"` // lookup, goto, blackhole, ...
	Protocol          int    `json:"protocol,omitempty"`
}

// Neighbours is neighbours.json: the ARP and NDP entries on the path's
// devices of the namespace.
type Neighbours struct {
	NetNS      string      `json:"netns"`
	Devices    []LinkRef   `json:"devices"`
	Neighbours []Neighbour `json:"neighbours"` // by device, family, address
}

// Neighbour is one neighbour entry.
type Neighbour struct {
	Index     int      `json:"index"`
	Interface string   `json:"interface"`
	Family    string   `json:"family"`
	IP        string   `json:"ip"`
	MAC       string   `json:"mac,omitempty"`
	State     []string `json:"state"` // reachable, stale, permanent, noarp, failed, ...
	Flags     []string `json:"flags,omitempty"`
}

// FDB is fdb.json: the bridge forwarding database entries on the path's
// devices of the namespace, and on the ports of a bridge on the path: a
// VXLAN device's entries say which remote VTEP a MAC is behind.
type FDB struct {
	NetNS   string     `json:"netns"`
	Devices []LinkRef  `json:"devices"`
	Entries []FDBEntry `json:"entries"` // by device, MAC, VLAN, destination
}

// FDBEntry is one FDB entry, as bridge fdb shows it.
type FDBEntry struct {
	Index     int      `json:"index"`
	Interface string   `json:"interface"`
	MAC       string   `json:"mac"`
	Dst       string   `json:"dst,omitempty"` // the remote VTEP, on a VXLAN device
	VLAN      int      `json:"vlan,omitempty"`
	VNI       int      `json:"vni,omitempty"`
	Master    *LinkRef `json:"master,omitempty"`
	State     []string `json:"state,omitempty"`
	Flags     []string `json:"flags,omitempty"` // self, master, extern_learn, ...
}

// Conntrack is conntrack.json: the node's conntrack entries of the
// probes' flows, and the filter that chose them from the table.
type Conntrack struct {
	NetNS string `json:"netns"`
	// Filter: ICMP or ICMPv6 flows from one of Sources whose original
	// destination or reply source is one of Targets.
	Sources []string `json:"sources"`
	Targets []string `json:"targets"`
	Flows   []Flow   `json:"flows"` // by family, then original tuple
}

// Flow is one conntrack entry.
type Flow struct {
	Family   string `json:"family"`
	Protocol string `json:"protocol"` // icmp, ipv6-icmp, tcp, udp
	Original Tuple  `json:"original"`
	Reply    Tuple  `json:"reply"` // a DNAT shows as a reply source other than the original destination
	Mark     uint32 `json:"mark,omitempty"`
	Zone     uint16 `json:"zone,omitempty"`
	Timeout  uint32 `json:"timeout_s"`
}

// Tuple is one direction of a flow. Packets and Bytes count only when
// the node has net.netfilter.nf_conntrack_acct on.
type Tuple struct {
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	SrcPort uint16 `json:"sport,omitempty"` // TCP and UDP
	DstPort uint16 `json:"dport,omitempty"`
	Packets uint64 `json:"packets,omitempty"`
	Bytes   uint64 `json:"bytes,omitempty"`
}
