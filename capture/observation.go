// Package capture watches the capture points of a topology.Path: one
// AF_PACKET handle per point, opened inside the point's network namespace,
// with a classic BPF filter that passes only probe packets (IPv4 or IPv6,
// plain or inside VXLAN, Geneve or IPIP), kernel timestamps and the packet direction. It decodes what it sees
// into Observations and never parses the probe token itself.
package capture

import (
	"net/netip"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// StampSource says where a packet's kernel timestamp came from (design.md,
// kernel fact 1).
type StampSource string

// Stamp sources.
const (
	// StampSKB is the skb's own receive/transmit stamp (TP_STATUS_TS_SOFTWARE).
	// On RX it may have been set at an earlier device and inherited along
	// stacked devices (veth -> bridge, uplink -> vxlan).
	StampSKB StampSource = "skb"
	// StampCopy is the time the packet was copied into the ring: fresh at
	// every tap.
	StampCopy StampSource = "copy"
)

// Observation is one probe packet seen at one capture point.
type Observation struct {
	Point string       // topology.Point.ID
	At    time.Time    // kernel timestamp, CLOCK_REALTIME
	Stamp StampSource  // where At came from
	Dir   topology.Dir // tx or rx at that interface
	// Tunnel is TunnelVXLAN, TunnelGeneve or TunnelIPIP when the ICMP
	// packet was found inside that encapsulation, "" when plain.
	Tunnel string
	// Outer is the outer IP header's addresses for tunnelled packets.
	OuterSrc, OuterDst netip.Addr
	// Src and Dst are the ICMP packet's IP addresses (the inner ones when
	// tunnelled), IPv4 or IPv6: they show NAT rewrites along the path.
	Src, Dst netip.Addr
	ICMPType uint8  // 8 echo request, 0 echo reply (IPv4); 128 and 129 (ICMPv6)
	ICMPID   uint16 // as seen on the wire; not usable for matching
	ICMPSeq  uint16
	// Payload is a copy of the ICMP echo data (the probe token and padding).
	Payload []byte
	// Frame is the whole captured frame, kept only when Config.KeepFrames is
	// set (for pcapng output).
	Frame []byte
	// Link is how Frame starts: with an Ethernet header, or at the IP
	// header on a raw-IP device. Everything else is the same for a packet
	// seen on either kind of link.
	Link LinkType
}

// IsRequest reports whether the observation is an echo request (IPv4 or IPv6).
func (o Observation) IsRequest() bool { return o.ICMPType == 8 || o.ICMPType == 128 }

// IsReply reports whether the observation is an echo reply (IPv4 or IPv6).
func (o Observation) IsReply() bool { return o.ICMPType == 0 || o.ICMPType == 129 }
