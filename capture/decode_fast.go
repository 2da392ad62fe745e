package capture

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/gopacket/gopacket/layers"
)

// The fixed offsets decodeFast reads, besides filter.go's.
const (
	ethHeaderLen = 14
	ip4HeaderLen = 20   // without options: what decodeFast takes
	ip4VerIHL    = 0x45 // version 4, 5 words: no options
	offIP4Len    = 2
	offIP4Src    = 12
	offIP4Dst    = 16
	offUDPLen    = 4
	vxlanLen     = 8
	etherTypeIP4 = 0x0800
	icmpEchoReq  = 8
	icmpEchoRep  = 0
)

// decodeFast is Decode for the frames most probes make, read at fixed
// offsets without gopacket: IPv4 without options, a whole datagram or a
// first fragment, on a raw-IP link or after an Ethernet header whose
// ethertype is IPv4; plain, inside IPIP, or inside VXLAN on one of the
// decoder's ports (the inner frame Ethernet and IPv4 without options too);
// carrying an ICMP echo, or any other transport decodeTransport takes. It
// reports false for anything else, and for any frame decodeTransport finds
// fault with, leaving o partly filled: Decode then starts over with
// decodeLayers, whose error it returns. Whenever it reports true, o is what
// decodeLayers would have made of the frame (TestDecodeFastAgrees).
func (d *Decoder) decodeFast(o *Observation, frame []byte) bool {
	if d.link == LinkEthernet {
		if len(frame) < ethHeaderLen || binary.BigEndian.Uint16(frame[offEtherType:]) != etherTypeIP4 {
			return false
		}
		frame = frame[ethHeaderLen:]
	}
	ip, ok := fastIPv4(frame)
	if !ok {
		return false
	}
	switch ip.proto {
	case ipProtoUDP:
		frame, tunnel := d.fastVXLAN(ip.payload)
		switch {
		case frame == nil:
			return false // Geneve, or a UDP header decodeLayers reads another way
		case tunnel:
			inner, ok := fastInnerIPv4(frame)
			if !ok {
				return false
			}
			o.Tunnel, o.OuterSrc, o.OuterDst = TunnelVXLAN, ip.src, ip.dst
			ip = inner
		}
	case ipProtoIPIP:
		inner, ok := fastIPv4(ip.payload)
		if !ok {
			return false
		}
		o.Tunnel, o.OuterSrc, o.OuterDst = TunnelIPIP, ip.src, ip.dst
		ip = inner
	}
	o.Src, o.Dst = ip.src, ip.dst
	if ip.proto == ipProtoICMP && d.fastEcho(o, ip.payload) {
		return true
	}
	return d.decodeTransport(o, ip) == nil
}

// fastIPv4 reads an IPv4 header without options whose total length the
// data holds, and which is no later fragment. A total length of zero
// (TSO, which gopacket reads as the data's) is left to decodeLayers.
func fastIPv4(b []byte) (ipHeader, bool) {
	if len(b) < ip4HeaderLen || b[0] != ip4VerIHL {
		return ipHeader{}, false
	}
	n := int(binary.BigEndian.Uint16(b[offIP4Len:]))
	if n < ip4HeaderLen || n > len(b) || binary.BigEndian.Uint16(b[offIP4Frag:])&ipFragOffsetMask != 0 {
		return ipHeader{}, false
	}
	return ipHeader{
		proto:   layers.IPProtocol(b[offIP4Proto]),
		src:     netip.AddrFrom4([4]byte(b[offIP4Src:offIP4Dst])),
		dst:     netip.AddrFrom4([4]byte(b[offIP4Dst:ip4HeaderLen])),
		payload: b[ip4HeaderLen:n],
	}, true
}

// fastInnerIPv4 is fastIPv4 after the inner Ethernet header of a VXLAN
// frame.
func fastInnerIPv4(b []byte) (ipHeader, bool) {
	if len(b) < ethHeaderLen || binary.BigEndian.Uint16(b[offEtherType:]) != etherTypeIP4 {
		return ipHeader{}, false
	}
	return fastIPv4(b[ethHeaderLen:])
}

// fastVXLAN reads the UDP header of a datagram, which the data must hold
// whole as its length says, and returns the frame inside the VXLAN header
// when it goes to one of the decoder's VXLAN ports (tunnel true). Else it
// returns the datagram itself, for decodeTransport to take as a UDP probe,
// or nil: a datagram to Geneve's port, or one that is cut short, or too
// short for its VXLAN header, or of length zero (a jumbogram).
func (d *Decoder) fastVXLAN(b []byte) (inner []byte, tunnel bool) {
	if len(b) < udpHeaderLen {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b[offUDPLen:]))
	port := binary.BigEndian.Uint16(b[offUDPDst:])
	switch {
	case n < udpHeaderLen || n > len(b) || port == PortGeneve:
		return nil, false
	case !slices.Contains(d.ports, port):
		return b, false
	case n < udpHeaderLen+vxlanLen:
		return nil, false
	}
	return b[udpHeaderLen+vxlanLen : n], true
}

// fastEcho fills o from an ICMP echo request or reply, and reports false
// for any other message.
func (d *Decoder) fastEcho(o *Observation, b []byte) bool {
	if len(b) < offICMPData || (b[0] != icmpEchoReq && b[0] != icmpEchoRep) {
		return false
	}
	o.ICMPType, o.ICMPCode = b[0], b[1]
	o.ICMPID, o.ICMPSeq = binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint16(b[6:8])
	d.setEchoData(o, b[offICMPData:])
	return true
}
