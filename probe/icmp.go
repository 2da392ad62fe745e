package probe

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpProto is the ICMP a run speaks, named by its IP protocol number:
// ICMPv4 for IPv4 targets (v4-mapped IPv6 ones included), ICMPv6 for IPv6
// ones. Everything that differs between the two goes through it.
type icmpProto int

const (
	protoICMP   icmpProto = 1  // IPPROTO_ICMP
	protoICMPv6 icmpProto = 58 // IPPROTO_ICMPV6
)

// protoFor returns the ICMP used to probe target.
func protoFor(target netip.Addr) icmpProto {
	if target.Is6() && !target.Is4In6() {
		return protoICMPv6
	}
	return protoICMP
}

// String names p as errors show it: "ICMP" or "ICMPv6".
func (p icmpProto) String() string {
	if p == protoICMPv6 {
		return "ICMPv6"
	}
	return "ICMP"
}

// echoTypes returns p's echo request and echo reply types.
func (p icmpProto) echoTypes() (request, reply icmp.Type) {
	if p == protoICMPv6 {
		return ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	return ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
}

// ICMP and ICMPv6 echo types, as the wire carries them (RFC 792, RFC 4443).
const (
	icmpEchoRequest   = 8
	icmpEchoReply     = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
)

// echoBytes is echoTypes as the bytes on the wire.
func (p icmpProto) echoBytes() (request, reply byte) {
	if p == protoICMPv6 {
		return icmpv6EchoRequest, icmpv6EchoReply
	}
	return icmpEchoRequest, icmpEchoReply
}

// echoHeaderLen is the header of an echo message: type, code, checksum,
// identifier, sequence.
const echoHeaderLen = 8

// echoRequest builds the echo request of probe seq carrying data, in a
// buffer of its own; a run rewrites one in place instead (icmpCodec).
func (p icmpProto) echoRequest(id uint16, seq uint32, data []byte) ([]byte, error) {
	b := make([]byte, echoHeaderLen+len(data))
	copy(b[echoHeaderLen:], data)
	p.putEchoHeader(b, id, seq)
	p.setEchoChecksum(b, len(b), 0)
	return b, nil
}

// putEchoHeader writes the header of probe seq's echo request into
// b[:echoHeaderLen], its checksum zero. The echo sequence is the low 16
// bits of seq.
func (p icmpProto) putEchoHeader(b []byte, id uint16, seq uint32) {
	typ, _ := p.echoBytes()
	b[0], b[1], b[2], b[3] = typ, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], uint16(seq))
}

// setEchoChecksum fills in the checksum of the ICMPv4 echo request b (its
// checksum field zero), rest being the ones' complement sum of b[off:]
// (off even), which a run sums once: the padding is the same in every
// request. An ICMPv6 request keeps a zero checksum: it covers a
// pseudo-header with the source address, which only the kernel knows,
// and the kernel fills it on raw ICMPv6 sockets (RFC 3542 3.1; Linux
// forces IPV6_CHECKSUM at offset 2 on them).
func (p icmpProto) setEchoChecksum(b []byte, off int, rest uint32) {
	if p == protoICMPv6 {
		return
	}
	binary.BigEndian.PutUint16(b[2:], ^fold(onesSum(rest, b[:off])))
}

// matchReply returns the sequence of an echo reply carrying this run's
// token. b is the ICMP message, without an IP header. It reads the fixed
// offsets of an echo reply (what icmp.ParseMessage would check, without
// its allocations): the type, and the token after the 8-byte header.
func (p icmpProto) matchReply(b []byte, runID uint64) (uint32, bool) {
	if _, want := p.echoBytes(); len(b) < echoHeaderLen || b[0] != want {
		return 0, false
	}
	pl, ok := parsePayload(b[echoHeaderLen:])
	if !ok || pl.RunID != runID {
		return 0, false
	}
	return pl.Seq, true
}

// zoneIndex returns the interface index a target's zone names (fe80::1%2),
// or 0 for none. Only numeric zones are accepted: a name would be looked up
// in the caller's network namespace, not in the pod's.
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(zone, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("zone %q: give the interface index in the pod's netns (fe80::1%%2), not a name", zone)
	}
	return uint32(n), nil
}

// icmpMessage returns the ICMP message in b, read from a raw socket for p.
// Raw IPv4 reads carry the IP header; raw IPv6 reads do not (RFC 3542 3:
// the IPv6 header and extension headers are never passed up).
func icmpMessage(p icmpProto, b []byte) []byte {
	if p == protoICMPv6 {
		return b
	}
	return ipv4Payload(b)
}

// ipv4Payload returns what follows the IPv4 header in b, as net.IPConn's
// ReadFrom does for raw sockets: raw IPv4 reads carry the header. Anything
// that does not look like one is returned whole.
func ipv4Payload(b []byte) []byte {
	if len(b) < 20 || b[0]>>4 != 4 {
		return b
	}
	if l := int(b[0]&0x0f) << 2; l >= 20 && l <= len(b) {
		return b[l:]
	}
	return b
}

// echoReplyFilter is the socket filter of a raw ICMP socket: only echo
// replies whose data opens with Magic, cnitrace's own, reach the socket.
// Without it a raw socket queues a copy of every echo reply the netns
// receives (ICMP_FILTER passes all of type 0): a ping beside cnitrace woke
// its reader for each of its replies (perf: 0.94 wake-ups and 0.90 IPIs per
// ping probe) and a ping flood would fill its receive queue (SocketDrops).
// The run id is left to Run, so runs sharing a socket share its filter. A
// raw IPv4 socket's filter sees the IP header (its length from the IHL, in
// X), a raw IPv6 socket's the ICMPv6 header.
func echoReplyFilter(p icmpProto) ([]bpf.RawInstruction, error) {
	first := bpf.Instruction(bpf.LoadMemShift{Off: 0}) // X = 4*(ip[0]&0xf)
	if p == protoICMPv6 {
		first = bpf.LoadConstant{Dst: bpf.RegX, Val: 0}
	}
	_, reply := p.echoBytes()
	return bpf.Assemble([]bpf.Instruction{
		first,
		bpf.LoadIndirect{Off: 0, Size: 1}, // type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(reply), SkipTrue: 3},
		bpf.LoadIndirect{Off: echoHeaderLen, Size: 4}, // the data's first word
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: Magic, SkipTrue: 1},
		bpf.RetConstant{Val: 0x40000},
		bpf.RetConstant{Val: 0},
	})
}
