package topology

import (
	"fmt"
	"net/netip"
)

// Kind says what role an interface plays on the path. It is an open set:
// renderers print unknown kinds as they are.
type Kind string

// Kinds of capture points.
const (
	KindPod    Kind = "pod"    // the pod's own interface, inside the pod netns
	KindVeth   Kind = "veth"   // the node-side end of the pod's veth pair
	KindBridge Kind = "bridge" // the bridge the veth is enslaved to (cni0, docker0)
	KindVXLAN  Kind = "vxlan"  // the overlay device (flannel.1, vxlan.calico)
	KindGeneve Kind = "geneve" // a Geneve overlay device
	KindIPIP   Kind = "ipip"   // an IP-in-IP tunnel device
	KindUplink Kind = "uplink" // the node's interface toward the network (a macvlan pod's parent too)
	KindOther  Kind = "other"  // anything else the route goes through
)

// Turnaround says what answers the probes beyond a path's last point: what
// the segment from the request's last sighting to the reply's first holds.
// It is an open set: readers print unknown values as they are.
type Turnaround string

// Turnarounds.
const (
	// TurnNetwork: the probes leave the node by the last point (an uplink)
	// and come back by it: the wire and whatever answers beyond it, another
	// node and its pod or a host outside the cluster.
	TurnNetwork Turnaround = "network"
	// TurnPeer: the last point is the host side (or, on macvlan, the
	// interface) behind which another pod on this node answers.
	TurnPeer Turnaround = "peer"
	// TurnNode: the target is an address of the node itself; the last
	// point is where the requests entered the node (the pod's host veth or
	// its bridge), and the node's own stack answers them there.
	TurnNode Turnaround = "node"
)

// Dir is the direction in which a packet crosses an interface, as the
// kernel's packet taps see it.
type Dir string

// Directions.
const (
	TX Dir = "tx" // transmitted by the interface (dev_queue_xmit)
	RX Dir = "rx" // received by the interface (netif_receive)
)

// Reverse returns the opposite direction.
func (d Dir) Reverse() Dir {
	if d == TX {
		return RX
	}
	return TX
}

// Point is one interface on the path where packets are captured.
type Point struct {
	ID        string `json:"id"`        // p0, p1, ... in request order
	Interface string `json:"interface"` // name inside its netns
	Ifindex   int    `json:"ifindex"`
	NetNS     string `json:"netns"` // net:[4026532301]
	Kind      Kind   `json:"kind"`
	// RequestDir is how a request crosses the point; the reply crosses it the
	// other way.
	RequestDir Dir `json:"request_dir"`
	// TunnelPort is the UDP port of an overlay device (VXLAN 8472, 4789).
	TunnelPort int `json:"tunnel_port,omitempty"`
}

// Name renders the point as ifname@netns, the form used in every message.
func (p Point) Name() string { return p.Interface + "@" + p.NetNS }

// Path is the sequence of capture points a probe from the source netns to
// Target crosses on this node, in request order. Replies cross the same points
// in reverse order and direction. It is plain data.
type Path struct {
	Target netip.Addr `json:"target"`
	// Translated is the address the node's DNAT rewrites Target to (a
	// Service's backend), found in its conntrack table; zero when the node
	// forwards to Target itself.
	Translated netip.Addr `json:"translated,omitzero"`
	Source     Source     `json:"source"`
	Points     []Point    `json:"points"`
	// Turnaround is what answers beyond the last point. Empty in paths
	// recorded before it was set: a last point of kind veth then means
	// TurnPeer, any other TurnNetwork (see TurnaroundOrInferred).
	Turnaround Turnaround `json:"turnaround,omitempty"`
}

// TurnaroundOrInferred returns p.Turnaround, or, for a path that does not
// say (recorded before the field existed), what such paths meant: a pod
// on this node when the last point is a veth, else the network.
func (p *Path) TurnaroundOrInferred() Turnaround {
	switch {
	case p.Turnaround != "":
		return p.Turnaround
	case len(p.Points) > 0 && p.Points[len(p.Points)-1].Kind == KindVeth:
		return TurnPeer
	}
	return TurnNetwork
}

// Source is where probes are sent from.
type Source struct {
	NetNS     string     `json:"netns"`
	Interface string     `json:"interface"`
	Addr      netip.Addr `json:"addr"`
}

// Point returns the point with the given ID.
func (p *Path) Point(id string) (Point, bool) {
	for _, pt := range p.Points {
		if pt.ID == id {
			return pt, true
		}
	}
	return Point{}, false
}

// String renders the path on one line: eth0@net:[1] -> veth1@net:[2] -> ...
func (p *Path) String() string {
	s := ""
	for i, pt := range p.Points {
		if i > 0 {
			s += " -> "
		}
		s += fmt.Sprintf("%s(%s)", pt.Name(), pt.Kind)
	}
	return s
}

// Flow is the traffic a path is discovered for (DiscoverFlow): the probes'
// IP protocol and destination port. The zero Flow is ICMP echo (ICMPv6
// for an IPv6 target), as Discover assumes.
type Flow struct {
	Proto uint8  // ProtoTCP or ProtoUDP; 0 for ICMP echo
	Port  uint16 // the destination port of TCP and UDP; 0 for ICMP
	// EchoID is the id the ICMP echo requests carry (the probe sent
	// before discovery among them), 0 when unknown. With it, discovery
	// looks that flow's one conntrack entry up first, and dumps the
	// table only when there is none.
	EchoID uint16
	// SrcPort is the source port of the TCP or UDP probe sent before
	// discovery, 0 when unknown: with it, as with EchoID, discovery looks
	// that flow's entry up first.
	SrcPort uint16
}

// IP protocol numbers of Flow.Proto.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)
