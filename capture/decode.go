package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/cnitrace/cnitrace/topology"
)

// Observation.Tunnel values for packets found inside an encapsulation.
const (
	TunnelVXLAN  = "vxlan"
	TunnelGeneve = "geneve"
	TunnelIPIP   = "ipip"
)

// Meta is what a capture handle knows about a frame besides its bytes.
type Meta struct {
	Point string       // topology.Point.ID
	At    time.Time    // kernel timestamp
	Stamp StampSource  // where At came from
	Dir   topology.Dir // tx or rx
}

// Decoder turns captured frames into Observations: ICMP or ICMPv6 echo
// packets, TCP SYN probes and their SYN-ACKs and RST-ACKs, UDP and DNS
// probes and their replies, and ICMP destination unreachables quoting a UDP
// or TCP SYN probe; plain, inside VXLAN (on its UDP ports) or Geneve (6081) over an
// IPv4 or IPv6 underlay, or inside IPIP: what FilterFor passes for the same
// link type, ports and magic. It decodes layer by layer with
// DecodeFromBytes into structs it reuses, so it recognises the tunnels on
// its own port set and never relies on gopacket's global port registry. It
// never validates checksums (design.md fact 2). It finds the probe token
// where the wire format puts it (docs/probe.md) and checks its magic where
// that decides what the packet is (TCP and UDP); reading the run id and
// sequence is left to package probe.
//
// A Decoder is not safe for concurrent use; use one per goroutine.
type Decoder struct {
	link  LinkType
	magic uint32
	ports []uint16 // VXLAN ports; a few, so a scan beats a map

	// arena is the chunk that what Observations keep (Payload, Token) is
	// copied into (keep): its length handed out, its capacity the rest.
	arena []byte

	outer, inner ipLayers // the inner set for the frame inside a tunnel
	udp          layers.UDP
	vxlan        layers.VXLAN
	icmp4        layers.ICMPv4
	icmp6        layers.ICMPv6
	echo6        layers.ICMPv6Echo

	feedback truncation
}

// ipLayers are the reused structs for one link-layer and IP header.
type ipLayers struct {
	eth layers.Ethernet
	ip4 layers.IPv4
	ip6 layers.IPv6
}

// ipHeader is what the decoder needs of a decoded IPv4 or IPv6 header.
type ipHeader struct {
	v6       bool
	proto    layers.IPProtocol // IPv6: the next header after the fixed header
	src, dst netip.Addr
	payload  []byte // bounded by the header's length field
}

// icmpProto is the ICMP protocol number of the header's IP version.
func (h ipHeader) icmpProto() layers.IPProtocol {
	if h.v6 {
		return layers.IPProtocolICMPv6
	}
	return layers.IPProtocolICMPv4
}

// probeMagic is probe.Magic, the magic of the wire format NewDecoderFor
// decodes (capture never imports probe; TestProbeMagic checks the two
// agree).
const probeMagic = 0x636e7431

// NewDecoderFor returns a Decoder for frames that start as link says, which
// recognises VXLAN on UDP destination ports 4789, 8472 and udpPorts, and
// Geneve on 6081 (also when udpPorts holds it), and TCP and UDP probes by
// probe's magic, 0x636e7431.
func NewDecoderFor(link LinkType, udpPorts []uint16) *Decoder {
	return newDecoder(link, probeMagic, udpPorts)
}

// newDecoder is NewDecoderFor for another magic: a Session decodes with the
// magic its filter matches.
func newDecoder(link LinkType, magic uint32, udpPorts []uint16) *Decoder {
	d := &Decoder{link: link, magic: magic, ports: []uint16{PortVXLAN, PortVXLANLinux}}
	for _, p := range udpPorts {
		if p != PortGeneve && !slices.Contains(d.ports, p) {
			d.ports = append(d.ports, p)
		}
	}
	return d
}

// Decode decodes one frame seen as described by m. The returned Observation
// holds copies of what it keeps of the frame (Payload, Token) and shares no
// memory with frame; Frame is left nil and Link is the decoder's link type.
// The copies are carved out of chunks the Decoder allocates (keep): each
// observation's bytes are its own, capped, and never written again.
// Decode returns an error for what FilterFor would reject (but for ICMPv4
// messages and ICMP echoes without the magic: whether their data carries a
// probe token is the report's to check, as before TCP and UDP probes), and
// for whatever is cut short or malformed.
//
// The frames most probes make (IPv4 without options, plain, in IPIP or in
// VXLAN over IPv4) are read at fixed offsets (decodeFast); any other frame,
// and any the fast path is not sure of, is decoded layer by layer
// (decodeLayers), which gives the same Observation (TestDecodeFastAgrees).
func (d *Decoder) Decode(frame []byte, m Meta) (Observation, error) {
	o := Observation{Point: m.Point, At: m.At, Stamp: m.Stamp, Dir: m.Dir, Link: d.link}
	if d.decodeFast(&o, frame) {
		return o, nil
	}
	return d.decodeLayers(frame, m)
}

// decodeLayers is Decode layer by layer, for every frame.
func (d *Decoder) decodeLayers(frame []byte, m Meta) (Observation, error) {
	o := Observation{Point: m.Point, At: m.At, Stamp: m.Stamp, Dir: m.Dir, Link: d.link}
	outer, err := d.decodeIP(&d.outer, d.link, frame, "outer")
	if err != nil {
		return Observation{}, err
	}
	ip, err := d.decapsulate(&o, outer)
	if err != nil {
		return Observation{}, err
	}
	o.Src, o.Dst = ip.src, ip.dst
	if err := d.decodeTransport(&o, ip); err != nil {
		return Observation{}, err
	}
	return o, nil
}

// decapsulate returns the IP header that carries the probe packet: outer
// itself when plain (UDP to a port that is no tunnel's included), else the
// inner one, after setting o's tunnel fields.
func (d *Decoder) decapsulate(o *Observation, outer ipHeader) (ipHeader, error) {
	var (
		inner ipHeader
		err   error
	)
	switch {
	case outer.proto == layers.IPProtocolUDP:
		var frame []byte
		if o.Tunnel, frame, err = d.decodeUDPTunnel(outer.payload); err != nil || o.Tunnel == "" {
			return outer, err
		}
		inner, err = d.decodeIP(&d.inner, LinkEthernet, frame, "inner")
	case outer.proto == layers.IPProtocolIPv4 && !outer.v6:
		o.Tunnel = TunnelIPIP
		inner, err = d.decodeIPv4(&d.inner.ip4, outer.payload, "inner")
	default:
		return outer, nil
	}
	if err != nil {
		return ipHeader{}, err
	}
	o.OuterSrc, o.OuterDst = outer.src, outer.dst
	return inner, nil
}

// decodeTransport fills o from the ICMP, TCP or UDP packet in ip's payload.
func (d *Decoder) decodeTransport(o *Observation, ip ipHeader) error {
	switch ip.proto {
	case ip.icmpProto():
		return d.decodeICMP(o, ip)
	case layers.IPProtocolTCP:
		return d.decodeTCP(o, ip.payload)
	case layers.IPProtocolUDP:
		err := d.decodeUDP(o, ip.payload)
		if err != nil && o.Tunnel == "" {
			return fmt.Errorf("decode UDP: port %d is not a tunnel port, and %w", d.udp.DstPort, err)
		}
		if err != nil {
			return fmt.Errorf("decode inner UDP: %w", err)
		}
		return nil
	}
	which, ipip := "outer", ", TCP, UDP nor IPIP"
	if o.Tunnel != "" {
		which, ipip = "inner", ", TCP nor UDP"
	}
	return fmt.Errorf("decode %s IP: protocol %s is neither %s%s", which, ip.proto, ip.icmpProto(), ipip)
}

// decodeIP decodes the link-layer header, if link has one, and the IPv4 or
// IPv6 header after it.
func (d *Decoder) decodeIP(l *ipLayers, link LinkType, data []byte, which string) (ipHeader, error) {
	var v6 bool
	switch link {
	case LinkEthernet:
		if err := l.eth.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
			return ipHeader{}, fmt.Errorf("decode %s Ethernet: %w", which, err)
		}
		switch l.eth.EthernetType {
		case layers.EthernetTypeIPv4:
		case layers.EthernetTypeIPv6:
			v6 = true
		default:
			return ipHeader{}, fmt.Errorf("decode %s Ethernet: ethertype %s, want IPv4 or IPv6", which, l.eth.EthernetType)
		}
		data = l.eth.Payload
	case LinkRawIP:
		if len(data) == 0 {
			return ipHeader{}, fmt.Errorf("decode %s IP: empty packet", which)
		}
		v6 = data[0]>>4 == 6
	default:
		return ipHeader{}, fmt.Errorf("decode %s: unknown link type %s", which, link)
	}
	if v6 {
		return d.decodeIPv6(&l.ip6, data, which)
	}
	return d.decodeIPv4(&l.ip4, data, which)
}

// decodeIPv4 decodes an IPv4 header. It accepts only whole, first
// fragments.
func (d *Decoder) decodeIPv4(ip *layers.IPv4, data []byte, which string) (ipHeader, error) {
	d.feedback = false
	if err := ip.DecodeFromBytes(data, &d.feedback); err != nil {
		return ipHeader{}, fmt.Errorf("decode %s IPv4: %w", which, err)
	}
	switch {
	case ip.Version != 4:
		return ipHeader{}, fmt.Errorf("decode %s IPv4: version %d", which, ip.Version)
	case bool(d.feedback):
		return ipHeader{}, fmt.Errorf("decode %s IPv4: truncated (%d bytes of %d)", which, len(data), ip.Length)
	case ip.FragOffset != 0:
		return ipHeader{}, fmt.Errorf("decode %s IPv4: fragment at offset %d", which, int(ip.FragOffset)*8)
	}
	h := ipHeader{proto: ip.Protocol, payload: ip.Payload}
	h.src, _ = netip.AddrFromSlice(ip.SrcIP) // 4 bytes after a successful decode
	h.dst, _ = netip.AddrFromSlice(ip.DstIP)
	return h, nil
}

// decodeIPv6 decodes the fixed IPv6 header. Extension headers are not
// followed: a hop-by-hop header, which gopacket strips, is refused here, as
// the filter refuses it.
func (d *Decoder) decodeIPv6(ip *layers.IPv6, data []byte, which string) (ipHeader, error) {
	d.feedback = false
	if err := ip.DecodeFromBytes(data, &d.feedback); err != nil {
		return ipHeader{}, fmt.Errorf("decode %s IPv6: %w", which, err)
	}
	switch {
	case ip.Version != 6:
		return ipHeader{}, fmt.Errorf("decode %s IPv6: version %d", which, ip.Version)
	case bool(d.feedback):
		return ipHeader{}, fmt.Errorf("decode %s IPv6: truncated (%d bytes of %d)", which, len(data), ipv6HeaderLen+int(ip.Length))
	case ip.HopByHop != nil:
		return ipHeader{}, fmt.Errorf("decode %s IPv6: extension headers are not followed", which)
	}
	h := ipHeader{v6: true, proto: ip.NextHeader, payload: ip.Payload}
	h.src, _ = netip.AddrFromSlice(ip.SrcIP) // 16 bytes after a successful decode
	h.dst, _ = netip.AddrFromSlice(ip.DstIP)
	return h, nil
}

// decodeUDPTunnel decodes UDP and, to a tunnel port, the VXLAN or Geneve
// header, and returns the tunnel's name and the inner Ethernet frame; to
// any other port it returns no tunnel: the datagram may be a UDP probe.
func (d *Decoder) decodeUDPTunnel(data []byte) (string, []byte, error) {
	if err := d.udp.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
		return "", nil, fmt.Errorf("decode UDP: %w", err)
	}
	switch port := uint16(d.udp.DstPort); {
	case port == PortGeneve:
		frame, err := genevePayload(d.udp.Payload)
		return TunnelGeneve, frame, err
	case slices.Contains(d.ports, port):
		if err := d.vxlan.DecodeFromBytes(d.udp.Payload, gopacket.NilDecodeFeedback); err != nil {
			return "", nil, fmt.Errorf("decode VXLAN: %w", err)
		}
		return TunnelVXLAN, d.vxlan.Payload, nil
	}
	return "", nil, nil
}

// genevePayload checks a Geneve header (RFC 8926 section 3.4: version 0,
// protocol type Transparent Ethernet Bridging) and returns what follows its
// options, Opt Len 4-byte words after the fixed 8 bytes. It reads the header
// itself rather than with layers.Geneve, whose option walk keeps its offset
// in a uint8 (options over 247 bytes wrap it), allocates per option, and
// places the payload after the last option even when the options overrun
// Opt Len: the filter and the kernel go by Opt Len alone.
func genevePayload(b []byte) ([]byte, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("decode Geneve: truncated header (%d bytes)", len(b))
	}
	if v := b[0] >> 6; v != 0 {
		return nil, fmt.Errorf("decode Geneve: version %d", v)
	}
	if p := layers.EthernetType(binary.BigEndian.Uint16(b[2:4])); p != layers.EthernetTypeTransparentEthernetBridging {
		return nil, fmt.Errorf("decode Geneve: protocol type %#04x, want Ethernet (0x6558)", uint16(p))
	}
	n := 8 + int(b[0]&0x3f)*4
	if len(b) < n {
		return nil, fmt.Errorf("decode Geneve: truncated options (%d bytes of %d)", len(b)-8, n-8)
	}
	return b[n:], nil
}

// decodeICMP fills o's ICMP fields from the ICMP or ICMPv6 message in ip's
// payload and copies the echo data, or the quoted probe of a destination
// unreachable.
func (d *Decoder) decodeICMP(o *Observation, ip ipHeader) error {
	if ip.v6 {
		return d.decodeICMPv6(o, ip.payload)
	}
	if err := d.icmp4.DecodeFromBytes(ip.payload, gopacket.NilDecodeFeedback); err != nil {
		return fmt.Errorf("decode ICMP: %w", err)
	}
	o.ICMPType, o.ICMPCode = d.icmp4.TypeCode.Type(), d.icmp4.TypeCode.Code()
	if o.ICMPType == icmpDestUnreach && d.decodeQuote(o, d.icmp4.Payload, false) == nil {
		return nil
	}
	// Any other message, and an unreachable quoting no probe, as before TCP
	// and UDP probes: an ICMP observation whose data the report may read,
	// with a Token only if it is an echo.
	o.ICMPID = d.icmp4.Id
	o.ICMPSeq = d.icmp4.Seq
	d.setEchoData(o, d.icmp4.Payload)
	if o.ICMPType != layers.ICMPv4TypeEchoRequest && o.ICMPType != layers.ICMPv4TypeEchoReply {
		o.Token = nil
	}
	return nil
}

// decodeICMPv6 accepts echo requests and replies, as the filter does, and
// destination unreachables quoting a UDP or TCP SYN probe.
func (d *Decoder) decodeICMPv6(o *Observation, data []byte) error {
	if err := d.icmp6.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
		return fmt.Errorf("decode ICMPv6: %w", err)
	}
	typ := d.icmp6.TypeCode.Type()
	switch typ {
	case layers.ICMPv6TypeDestinationUnreachable:
		o.ICMPType, o.ICMPCode = typ, d.icmp6.TypeCode.Code()
		if len(d.icmp6.Payload) < 4 {
			return fmt.Errorf("decode ICMPv6: destination unreachable of %d bytes", len(data))
		}
		return d.decodeQuote(o, d.icmp6.Payload[4:], true) // after 4 unused bytes
	case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
	default:
		return fmt.Errorf("decode ICMPv6: type %d is not an echo request or reply, nor a destination unreachable", typ)
	}
	if err := d.echo6.DecodeFromBytes(d.icmp6.Payload, gopacket.NilDecodeFeedback); err != nil {
		return fmt.Errorf("decode ICMPv6 echo: %w", err)
	}
	o.ICMPType, o.ICMPCode = typ, d.icmp6.TypeCode.Code()
	o.ICMPID = d.echo6.Identifier
	o.ICMPSeq = d.echo6.SeqNumber
	d.setEchoData(o, d.echo6.Payload)
	return nil
}

// setEchoData copies ICMP echo data into o.Payload; Token is its first
// TokenLen bytes, when there are as many.
func (d *Decoder) setEchoData(o *Observation, data []byte) {
	o.Payload = d.keep(data)
	if len(o.Payload) >= TokenLen {
		o.Token = o.Payload[:TokenLen:TokenLen]
	}
}

// Sizes of what keep copies into.
const (
	arenaChunk = 16 << 10 // some 300 echoes of ping's size, a single allocation
	arenaMax   = 1 << 10  // bigger copies get an allocation of their own
)

// keep returns a copy of b, nil when b is empty, as append([]byte(nil),
// b...) would, but carved out of a chunk the Decoder allocates
// arenaChunk bytes at a time: a probe's packets cost no allocation each.
// The copy is capped, so an append to it reallocates rather than writing
// into the next copy, and it is never written again: a chunk lives as long
// as any observation that holds a copy in it.
func (d *Decoder) keep(b []byte) []byte {
	switch {
	case len(b) == 0:
		return nil
	case len(b) > arenaMax:
		return append([]byte(nil), b...)
	case len(b) > cap(d.arena)-len(d.arena):
		d.arena = make([]byte, 0, arenaChunk)
	}
	n := len(d.arena)
	d.arena = append(d.arena, b...)
	return d.arena[n:len(d.arena):len(d.arena)]
}

// truncation is a gopacket.DecodeFeedback that remembers SetTruncated.
type truncation bool

func (t *truncation) SetTruncated() { *t = true }
