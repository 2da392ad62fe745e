// Package capture watches the capture points of a topology.Path: one
// AF_PACKET handle per point, opened inside the point's network namespace,
// with a classic BPF filter that passes only probe packets (ICMP echo, TCP
// SYN, UDP and DNS probes and their replies, IPv4 or IPv6, plain or inside
// VXLAN, Geneve or IPIP), kernel timestamps and the packet direction. It
// decodes what it sees into Observations: it finds the probe token where
// the wire format puts it (docs/probe.md) and leaves reading it to package
// probe.
package capture

import (
	"net/netip"
	"strconv"
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

// Proto is what kind of probe packet an Observation is.
type Proto uint8

// Probe packet kinds. The zero value is ICMP, so an Observation built
// before TCP and UDP probes existed (or by hand, in tests) is an ICMP one.
const (
	// ProtoICMP is an ICMP or ICMPv6 echo request or reply (ICMPType,
	// ICMPID, ICMPSeq, Payload).
	ProtoICMP Proto = iota
	// ProtoTCP is a TCP SYN probe (its token in the first option), or a
	// SYN-ACK or RST-ACK acknowledging one (TCPAck, no token).
	ProtoTCP
	// ProtoUDP is a UDP probe or its reply: a datagram opening with the
	// token (a UDP echo returns it as it came), or a DNS query or answer
	// whose question's first label carries it (DNS).
	ProtoUDP
	// ProtoUnreachable is an ICMP destination unreachable (type 3) or
	// ICMPv6 destination unreachable (type 1) quoting a UDP probe, as a
	// closed port answers one, or a TCP SYN probe, as a REJECT rule
	// answers one (kube-proxy's for a Service without endpoints, a
	// NetworkPolicy's): ICMPType and ICMPCode are the error's; ports, DNS
	// and Token the quoted datagram's, or ports, TCPSeq and Token (if the
	// quote holds it) the quoted SYN's.
	ProtoUnreachable
)

func (p Proto) String() string {
	switch p {
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoUnreachable:
		return "icmp-unreachable"
	}
	return "Proto(" + strconv.Itoa(int(p)) + ")"
}

// TCP flags, as in Observation.TCPFlags (the 13th byte of the TCP header).
const (
	TCPFlagFIN uint8 = 0x01
	TCPFlagSYN uint8 = 0x02
	TCPFlagRST uint8 = 0x04
	TCPFlagPSH uint8 = 0x08
	TCPFlagACK uint8 = 0x10
)

// TokenLen is the size of Observation.Token: the 16 bytes every probe
// carries whatever its protocol, magic (4), run id (8) and sequence (4),
// big-endian (docs/probe.md). They are the first 16 bytes of probe's
// 24-byte ICMP token, which adds the send time.
const TokenLen = 16

// Observation is one probe packet seen at one capture point.
type Observation struct {
	Point string       // topology.Point.ID
	At    time.Time    // kernel timestamp, CLOCK_REALTIME
	Stamp StampSource  // where At came from
	Dir   topology.Dir // tx or rx at that interface
	// Tunnel is TunnelVXLAN, TunnelGeneve or TunnelIPIP when the probe
	// packet was found inside that encapsulation, "" when plain.
	Tunnel string
	// Outer is the outer IP header's addresses for tunnelled packets.
	OuterSrc, OuterDst netip.Addr
	// Src and Dst are the probe packet's IP addresses (the inner ones when
	// tunnelled), IPv4 or IPv6: they show NAT rewrites along the path. For
	// ProtoUnreachable they are the error's: from whoever sent it, to the
	// probe's source.
	Src, Dst netip.Addr
	// Proto says which of the fields below the packet filled in.
	Proto Proto

	// ICMPType is 8 echo request, 0 echo reply (IPv4), 128 and 129
	// (ICMPv6) for ProtoICMP; 3 (IPv4) or 1 (ICMPv6) for ProtoUnreachable;
	// 0 otherwise. ICMPCode is the code of either (3 or 4: port
	// unreachable).
	ICMPType, ICMPCode uint8
	ICMPID             uint16 // ProtoICMP, as seen on the wire; not usable for matching
	ICMPSeq            uint16 // ProtoICMP
	// Payload is a copy of the ICMP echo data (the probe token and
	// padding), ProtoICMP only. Like Token's, its bytes are carved out of
	// a 16 KiB chunk the Decoder allocates for many observations, capped
	// and never written again: an observation kept long after the others
	// keeps its whole chunk; clone Payload and Token to keep them alone.
	Payload []byte

	// SrcPort and DstPort are the TCP or UDP ports; for ProtoUnreachable
	// the quoted datagram's, so the probe's (from the probe's source to
	// its target), as the error's sender saw them.
	SrcPort, DstPort uint16
	// TCPFlags (TCPFlagSYN, ...), TCPSeq and TCPAck are ProtoTCP's: a
	// probe is a SYN without ACK whose TCPSeq is its ISN; its replies, a
	// SYN-ACK (port open) or an RST-ACK (closed), have TCPAck = ISN+1 and
	// carry no token, so they are tied to their probe by TCPAck and the
	// reversed ports and addresses seen at the same point.
	//
	// TCPSeq is also set for a ProtoUnreachable quoting a TCP SYN probe:
	// the quoted ISN, whose top 16 bits are the magic's (0x636e), so never
	// 0, where a quote of a UDP probe leaves it 0. Every router quotes the
	// 8 bytes that hold it and the ports, not always the option with the
	// token: such an error is tied to its SYN, seen at the same point, by
	// SrcPort and DstPort (the SYN's, as the error's sender saw them) and
	// the probe's sequence modulo 32768, (TCPSeq & 0xffff) >> 1, which is
	// probe.TCPAnswerSeq(TCPSeq + 1). TCPFlags and TCPAck stay 0 for it.
	TCPFlags       uint8
	TCPSeq, TCPAck uint32
	// DNS says the token came from a DNS question's first label ("cnt1"
	// and the run id and sequence in hex) rather than from the start of
	// the UDP payload; DNSResponse is that message's QR bit: set on the
	// answer. ProtoUDP and ProtoUnreachable only.
	DNS, DNSResponse bool

	// Token is the TokenLen bytes of the probe token wherever the packet
	// carries them, nil where it carries none (SYN-ACK, RST-ACK, an ICMP
	// echo with less than TokenLen bytes of data, an ICMP message other
	// than an echo, an error quoting less of a SYN than its first option):
	// the first bytes of the ICMP echo data (sharing Payload's memory); the
	// UDP payload's first bytes; a DNS question's first label, decoded from
	// hex; the data of a TCP SYN's first option (kind 254); for an error,
	// the same of the datagram or SYN it quotes. probe reads run id and
	// sequence from it; capture checks only the magic, and for ICMP echoes
	// not even that (as before TCP and UDP).
	Token []byte

	// Frame is the whole captured frame, kept only when Config.KeepFrames is
	// set (for pcapng output).
	Frame []byte
	// Link is how Frame starts: with an Ethernet header, or at the IP
	// header on a raw-IP device. Everything else is the same for a packet
	// seen on either kind of link.
	Link LinkType
}

// IsRequest reports whether the observation is an ICMP echo request (IPv4
// or IPv6). It is false for every other Proto: TCP and UDP probes are told
// from their replies by TCPFlags, DNSResponse or direction.
func (o Observation) IsRequest() bool {
	return o.Proto == ProtoICMP && (o.ICMPType == 8 || o.ICMPType == 128)
}

// IsReply reports whether the observation is an ICMP echo reply (IPv4 or
// IPv6). It is false for every other Proto.
func (o Observation) IsReply() bool {
	return o.Proto == ProtoICMP && (o.ICMPType == 0 || o.ICMPType == 129)
}
