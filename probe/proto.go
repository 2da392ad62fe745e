package probe

import (
	"fmt"
	"strings"
)

// Proto is what a run sends: ICMP echo requests (the zero value), TCP
// SYNs or UDP datagrams. docs/probe.md, "TCP and UDP probes", says where
// each carries the token.
type Proto uint8

const (
	// ICMP sends ICMP or ICMPv6 echo requests, as the target is; the
	// default.
	ICMP Proto = iota
	// TCP sends SYNs to Config.Port from a raw IPPROTO_TCP socket
	// (CAP_NET_RAW), each from a source port of its own; the SYN-ACK (port
	// open) or the RST (port closed) answers it.
	TCP
	// UDP sends datagrams to Config.Port from an ordinary UDP socket (no
	// capability): the token and padding, or, to port 53, a DNS query
	// whose name carries the token. A datagram carrying the token back, a
	// DNS response echoing the question, or an ICMP destination
	// unreachable quoting the probe answers it.
	UDP
)

// String names p as the --proto flag spells it: "icmp", "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case ICMP:
		return "icmp"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProto reads a Proto as String spells it, in any case.
func ParseProto(s string) (Proto, error) {
	for _, p := range []Proto{ICMP, TCP, UDP} {
		if strings.EqualFold(s, p.String()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q: want icmp, tcp or udp", s)
}

// Reply says what answered a probe (Probe.Reply).
type Reply uint8

const (
	// NoReply: the probe was not answered in time.
	NoReply Reply = iota
	// EchoReply: an ICMP or ICMPv6 echo reply carrying the token.
	EchoReply
	// SynAck: a TCP SYN-ACK acknowledging the SYN: the port is open. The
	// target kernel answered; no application accepted anything (the
	// pod's kernel resets the half-open connection).
	SynAck
	// Reset: a TCP RST acknowledging the SYN: the port is closed, or a
	// firewall rejects with a reset.
	Reset
	// UDPReply: a UDP datagram carrying the token back at offset 0 (a
	// UDP echo).
	UDPReply
	// DNSReply: a DNS response whose question is the probe's;
	// Probe.ReplyCode is its RCODE (0 NOERROR, 3 NXDOMAIN, 5 REFUSED).
	DNSReply
	// Unreachable: an ICMP (type 3) or ICMPv6 (type 1) destination
	// unreachable quoting the probe, from Probe.ReplyFrom; Probe.ReplyCode
	// is its code (ICMP 3, ICMPv6 4: port unreachable; ICMP 13, ICMPv6 1:
	// administratively prohibited).
	Unreachable
)

// String names r in reports: "echo-reply", "syn-ack", "rst", "udp-reply",
// "dns-reply", "unreachable", or "none".
func (r Reply) String() string {
	switch r {
	case NoReply:
		return "none"
	case EchoReply:
		return "echo-reply"
	case SynAck:
		return "syn-ack"
	case Reset:
		return "rst"
	case UDPReply:
		return "udp-reply"
	case DNSReply:
		return "dns-reply"
	case Unreachable:
		return "unreachable"
	}
	return fmt.Sprintf("reply(%d)", uint8(r))
}
