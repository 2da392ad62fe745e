package probe

import (
	"fmt"
	"net/netip"
	"strconv"

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

// echoRequest builds the echo request of probe seq carrying data. An
// ICMPv6 request goes out with a zero checksum: it covers a pseudo-header
// with the source address, which only the kernel knows, and the kernel
// fills it on raw ICMPv6 sockets (RFC 3542 3.1; Linux forces
// IPV6_CHECKSUM at offset 2 on them).
func (p icmpProto) echoRequest(id uint16, seq uint32, data []byte) ([]byte, error) {
	typ, _ := p.echoTypes()
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(id), Seq: int(seq & 0xffff), Data: data}}
	return msg.Marshal(nil)
}

// matchReply returns the sequence of an echo reply carrying this run's
// token. b is the ICMP message, without an IP header.
func (p icmpProto) matchReply(b []byte, runID uint64) (uint32, bool) {
	_, want := p.echoTypes()
	m, err := icmp.ParseMessage(int(p), b)
	if err != nil || m.Type != want {
		return 0, false
	}
	echo, ok := m.Body.(*icmp.Echo)
	if !ok {
		return 0, false
	}
	pl, err := ParsePayload(echo.Data)
	if err != nil || pl.RunID != runID {
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
