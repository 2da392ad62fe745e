package probe

import (
	"fmt"
)

// The parsers report uses to find a TCP or UDP probe's token in what
// capture recorded, as it uses ParsePayload for ICMP (docs/probe.md, "TCP
// and UDP probes"). Each returns ErrNotProbe for anything else, and never
// panics.

// ParseToken reads the magic, run id and sequence at the start of b: a
// UDP probe's payload, its echo, or what an ICMP error quoted of either.
// Unlike ParsePayload it needs 16 bytes, not 24.
func ParseToken(b []byte) (Token, error) {
	t, ok := parseToken(b)
	if !ok {
		return Token{}, fmt.Errorf("%w: no token in %d bytes", ErrNotProbe, len(b))
	}
	return t, nil
}

// ParseTCPToken reads the token of a TCP SYN probe from its TCP header:
// the first option, kind 254 with ExID 0x636e, carries the rest of the
// magic, the run id and the sequence.
func ParseTCPToken(hdr []byte) (Token, error) {
	if len(hdr) < tcpTokenOff+tokenLen || hdr[20] != tcpOptionKind || hdr[21] != tcpOptionLen || int(hdr[12]>>4)*4 < tcpTokenOff+tokenLen {
		return Token{}, fmt.Errorf("%w: no token option in a TCP header of %d bytes", ErrNotProbe, len(hdr))
	}
	return ParseToken(hdr[tcpTokenOff:])
}

// TCPAnswerSeq returns the low 15 bits of the sequence of the probe a
// SYN-ACK or RST answers, from its acknowledgement number ack, and false
// when ack acknowledges no probe's ISN. The full sequence is that of the
// request seen on the reversed 4-tuple (as translated at that point).
func TCPAnswerSeq(ack uint32) (low uint32, ok bool) { return tcpLow(ack) }

// ParseDNSToken reads the token of a DNS probe from a UDP payload, query
// or response: the first label of the first question.
func ParseDNSToken(payload []byte) (Token, error) {
	if len(payload) < 3 {
		return Token{}, fmt.Errorf("%w: %d bytes", ErrNotProbe, len(payload))
	}
	t, ok := parseDNSToken(payload, payload[2]&0x80 != 0)
	if !ok {
		return Token{}, fmt.Errorf("%w: no token in the question of %d bytes", ErrNotProbe, len(payload))
	}
	return t, nil
}

// TCPTokenOffset and DNSTokenOffset are where Magic sits in a TCP probe's
// header and in a DNS probe's UDP payload, for capture filters.
const (
	TCPTokenOffset = tcpTokenOff
	DNSTokenOffset = dnsTokenOff
)
