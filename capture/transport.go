package capture

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// The TCP and UDP probes' wire format, as docs/probe.md lays it out and the
// filter matches it.
const (
	tcpMinHeaderLen = 20
	tcpTokenKind    = 254 // RFC 6994 experimental option
	tcpTokenOptLen  = 2 + TokenLen
	dnsHeaderLen    = 12
	dnsLabelLen     = 4 + 16 + 8 // "cnt1", the run id and the sequence in hex
	dnsQR           = 0x80       // in the first flags byte: a response
	quotedMinLen    = 8          // of the quoted transport header: what every router quotes (RFC 792)
)

// errNoToken: a UDP payload with the magic neither at its start nor where
// a DNS question's first label puts it.
var errNoToken = errors.New("no probe token at payload offset 0 or 13")

// decodeTCP fills o from a TCP segment: a SYN probe (no ACK) whose first
// option, kind 254 and 18 bytes long, carries the token, or a SYN-ACK or
// RST-ACK whose acknowledgement a probe's ISN makes (magic's top 16 bits,
// low bit set). The header is read by hand, as the filter reads it, at
// fixed offsets: layers.TCP would walk (and for MPTCP allocate) every
// option, of which only the first matters.
func (d *Decoder) decodeTCP(o *Observation, b []byte) error {
	if len(b) < tcpMinHeaderLen {
		return fmt.Errorf("decode TCP: truncated header (%d bytes)", len(b))
	}
	n := int(b[offTCPDataOf]>>4) * 4
	if n < tcpMinHeaderLen || n > len(b) {
		return fmt.Errorf("decode TCP: header length %d in a segment of %d bytes", n, len(b))
	}
	flags := b[offTCPFlags]
	seq, ack := binary.BigEndian.Uint32(b[4:8]), binary.BigEndian.Uint32(b[offTCPAck:])
	switch {
	case flags&TCPFlagACK != 0:
		if flags&(TCPFlagSYN|TCPFlagRST) == 0 {
			return fmt.Errorf("decode TCP: flags %#02x: an ACK without SYN or RST answers no probe", flags)
		}
		if ack&tcpISNMask != d.magic&0xffff0000|1 {
			return fmt.Errorf("decode TCP: acknowledgement %#08x acknowledges no probe", ack)
		}
	case flags&TCPFlagSYN != 0:
		opt := b[offTCPOption:n]
		if len(opt) < tcpTokenOptLen || opt[0] != tcpTokenKind || opt[1] != tcpTokenOptLen {
			return fmt.Errorf("decode TCP: a SYN without the token option first")
		}
		if m := binary.BigEndian.Uint32(opt[2:]); m != d.magic {
			return fmt.Errorf("decode TCP: a SYN whose first option holds %#08x, not the magic", m)
		}
		o.Token = d.keep(opt[2:tcpTokenOptLen])
	default:
		return fmt.Errorf("decode TCP: flags %#02x: neither a SYN nor a SYN-ACK or RST-ACK", flags)
	}
	o.Proto = ProtoTCP
	o.SrcPort, o.DstPort = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	o.TCPFlags, o.TCPSeq, o.TCPAck = flags, seq, ack
	return nil
}

// decodeUDP fills o from a UDP datagram whose payload carries the token.
func (d *Decoder) decodeUDP(o *Observation, b []byte) error {
	d.feedback = false
	if err := d.udp.DecodeFromBytes(b, &d.feedback); err != nil {
		return err
	}
	if d.feedback {
		return fmt.Errorf("truncated (%d bytes of %d)", len(b), d.udp.Length)
	}
	t, err := d.udpToken(d.udp.Payload)
	if err != nil {
		return err
	}
	o.Proto = ProtoUDP
	o.SrcPort, o.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
	t.set(o)
	return nil
}

// decodeQuote fills o from what an ICMP or ICMPv6 destination unreachable
// quotes (b starts at the quoted IP header): an IPv4 (v6: IPv6, no
// extension headers) header and a UDP datagram carrying the token or a
// TCP SYN probe, as far as the quote goes. It leaves o alone when b is
// anything else.
func (d *Decoder) decodeQuote(o *Observation, b []byte, v6 bool) error {
	proto, seg, err := quotedTransport(b, v6)
	if err != nil {
		return err
	}
	if proto == ipProtoTCP {
		return d.decodeQuotedTCP(o, seg)
	}
	n := len(seg)
	if l := int(binary.BigEndian.Uint16(seg[4:6])); l >= udpHeaderLen && l < n {
		n = l // the rest is not the datagram's; a longer one was cut by the quote
	}
	t, err := d.udpToken(seg[udpHeaderLen:n])
	if err != nil {
		return fmt.Errorf("decode quoted UDP: %w", err)
	}
	o.Proto = ProtoUnreachable
	o.SrcPort, o.DstPort = binary.BigEndian.Uint16(seg[0:2]), binary.BigEndian.Uint16(seg[2:4])
	t.set(o)
	return nil
}

// decodeQuotedTCP fills o from a quoted TCP header, of which b holds at
// least the 8 bytes every router quotes: the ports, and the sequence
// number, which must be a SYN probe's ISN (the magic's top 16 bits, the
// low bit clear), as the filter and probe's matchErr read it. Token is set
// only when the quote holds the whole first option and it is the probe's
// (kind 254, length 18, the magic); the flags are not read, a short quote
// having none.
func (d *Decoder) decodeQuotedTCP(o *Observation, b []byte) error {
	seq := binary.BigEndian.Uint32(b[offTCPSeq:])
	if seq&tcpISNMask != d.magic&0xffff0000 {
		return fmt.Errorf("decode quoted TCP: sequence %#08x is no probe's ISN", seq)
	}
	o.Proto = ProtoUnreachable
	o.SrcPort, o.DstPort = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	o.TCPSeq = seq
	o.Token = d.tcpOptionToken(b)
	return nil
}

// tcpOptionToken is a copy (keep) of the token in the first option of the TCP
// header b opens with, or nil when b does not hold all of it or the first
// option is not the token's.
func (d *Decoder) tcpOptionToken(b []byte) []byte {
	const end = offTCPMagic + TokenLen
	if len(b) < end || int(b[offTCPDataOf]>>4)*4 < end || b[offTCPOption] != tcpTokenKind || b[offTCPOption+1] != tcpTokenOptLen ||
		binary.BigEndian.Uint32(b[offTCPMagic:]) != d.magic {
		return nil
	}
	return d.keep(b[offTCPMagic:end])
}

// quotedTransport returns the protocol (UDP or TCP) of a quoted IP packet
// and its transport header, from there to the end of the quote: at least
// 8 bytes.
func quotedTransport(b []byte, v6 bool) (uint8, []byte, error) {
	hl, proto := ipv6HeaderLen, uint8(0)
	switch {
	case v6 && (len(b) < ipv6HeaderLen || b[0]>>4 != 6):
		return 0, nil, fmt.Errorf("decode quoted IPv6: not an IPv6 header")
	case v6:
		proto = b[offIP6Next]
		if proto != ipProtoUDP && proto != ipProtoTCP {
			return 0, nil, fmt.Errorf("decode quoted IPv6: next header %d is neither UDP nor TCP", proto)
		}
	default:
		if len(b) < 20 || b[0]>>4 != 4 {
			return 0, nil, fmt.Errorf("decode quoted IPv4: not an IPv4 header")
		}
		hl, proto = int(b[0]&0x0f)*4, b[offIP4Proto]
		if hl < 20 || binary.BigEndian.Uint16(b[offIP4Frag:])&ipFragOffsetMask != 0 || (proto != ipProtoUDP && proto != ipProtoTCP) {
			return 0, nil, fmt.Errorf("decode quoted IPv4: not the first fragment of a UDP datagram or TCP segment")
		}
	}
	if len(b) < hl+quotedMinLen {
		name := "UDP"
		if proto == ipProtoTCP {
			name = "TCP"
		}
		return 0, nil, fmt.Errorf("decode quoted %s: truncated (%d bytes)", name, len(b)-min(hl, len(b)))
	}
	return proto, b[hl:], nil
}

// udpToken is where a UDP payload carries the token.
type udpToken struct {
	token     []byte // a copy (Decoder.keep)
	dns, resp bool
}

func (t udpToken) set(o *Observation) { o.Token, o.DNS, o.DNSResponse = t.token, t.dns, t.resp }

// udpToken finds the token in a UDP payload: at its start (a UDP probe and
// its echo; nil when shorter than TokenLen), else in a DNS message's first
// question label, "cnt1" and the run id (16) and sequence (8) in hex, every
// letter in either case (a server may change them, 0x20 encoding, and probe
// reads the label case-insensitively). The token's magic is then d.magic
// itself, whatever the label's case.
func (d *Decoder) udpToken(p []byte) (udpToken, error) {
	if len(p) >= 4 && binary.BigEndian.Uint32(p) == d.magic {
		if len(p) < TokenLen {
			return udpToken{}, nil
		}
		return udpToken{token: d.keep(p[:TokenLen])}, nil
	}
	if m := caseMask(d.magic); len(p) < offDNSMagic+4 || binary.BigEndian.Uint32(p[offDNSMagic:])|m != d.magic|m {
		return udpToken{}, errNoToken
	}
	if p[dnsHeaderLen] != dnsLabelLen || len(p) < offDNSMagic+dnsLabelLen {
		return udpToken{}, fmt.Errorf("DNS question: first label of %d bytes, want %d (cnt1 and 24 hex digits)", p[dnsHeaderLen], dnsLabelLen)
	}
	var tok [TokenLen]byte
	binary.BigEndian.PutUint32(tok[:], d.magic) // in the magic's case, which probe.ParseToken wants
	if _, err := hex.Decode(tok[4:], p[offDNSMagic+4:offDNSMagic+dnsLabelLen]); err != nil {
		return udpToken{}, fmt.Errorf("DNS question: first label %q: %w", p[offDNSMagic:offDNSMagic+dnsLabelLen], err)
	}
	return udpToken{token: d.keep(tok[:]), dns: true, resp: p[2]&dnsQR != 0}, nil
}
