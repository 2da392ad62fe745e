package report

import (
	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// markKind says what a captured packet is of a probe: the one reading of
// the packets that trace's Accumulator and listen's Recorder both place.
type markKind uint8

const (
	markNone      markKind = iota // no probe's packet, or its token does not parse
	markRequest                   // a probe on its way: an echo request, a SYN, a DNS query
	markReply                     // an answer carrying the token: an echo reply, a DNS response, an ICMP error quoting the probe
	markEcho                      // a UDP datagram with the token: a request or its echo, told by the direction it crosses its point
	markTCPAnswer                 // a SYN-ACK or RST-ACK: no token, tied to its SYN (tcpTies)
	markStray                     // it carries a token but is no probe's packet on the path (an ICMP echo of another type, a tokened TCP segment that is no SYN)
)

// markOf reads o's token and what o is of its probe. ICMP echoes carry
// the token in the echo data (probe.ParsePayload, as before TCP and UDP
// probes, to the byte); the others in o.Token, as the capture found it.
func markOf(o capture.Observation) (probe.Token, markKind) {
	if o.Proto == capture.ProtoICMP {
		pl, err := probe.ParsePayload(o.Payload)
		switch {
		case err != nil:
			return probe.Token{}, markNone
		case o.IsRequest():
			return pl.Token(), markRequest
		case o.IsReply():
			return pl.Token(), markReply
		}
		return pl.Token(), markStray
	}
	if o.Proto == capture.ProtoTCP && o.TCPFlags&capture.TCPFlagACK != 0 {
		if o.TCPFlags&(capture.TCPFlagSYN|capture.TCPFlagRST) == 0 {
			return probe.Token{}, markNone
		}
		return probe.Token{}, markTCPAnswer
	}
	tok, err := probe.ParseToken(o.Token)
	if err != nil {
		return probe.Token{}, markNone
	}
	switch o.Proto {
	case capture.ProtoTCP:
		if o.TCPFlags&capture.TCPFlagSYN == 0 {
			return tok, markStray // no probe sends a tokened segment that is no SYN
		}
		return tok, markRequest
	case capture.ProtoUDP:
		switch {
		case !o.DNS:
			return tok, markEcho
		case o.DNSResponse:
			return tok, markReply
		}
		return tok, markRequest
	case capture.ProtoUnreachable:
		return tok, markReply
	}
	return tok, markStray
}
