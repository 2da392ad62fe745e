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
	KindUplink Kind = "uplink" // the node's interface toward the network
	KindOther  Kind = "other"  // anything else the route goes through
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
