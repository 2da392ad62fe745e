package capture

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/cnitrace/cnitrace/topology"
)

// TunnelVXLAN is Observation.Tunnel for packets found inside VXLAN.
const TunnelVXLAN = "vxlan"

// Meta is what a capture handle knows about a frame besides its bytes.
type Meta struct {
	Point string       // topology.Point.ID
	At    time.Time    // kernel timestamp
	Stamp StampSource  // where At came from
	Dir   topology.Dir // tx or rx
}

// Decoder turns captured Ethernet frames into Observations: plain IPv4 ICMP,
// or IPv4 ICMP inside VXLAN on one of its UDP ports. It decodes layer by
// layer with DecodeFromBytes into structs it reuses, so it recognises VXLAN
// on its own port set and never relies on gopacket's global port registry.
// It never validates checksums (design.md fact 2) and never parses the probe
// token.
//
// A Decoder is not safe for concurrent use; use one per goroutine.
type Decoder struct {
	ports map[uint16]bool

	eth   layers.Ethernet
	ip    layers.IPv4
	udp   layers.UDP
	vxlan layers.VXLAN
	icmp  layers.ICMPv4
	// The inner frame of a tunnelled packet.
	innerEth layers.Ethernet
	innerIP  layers.IPv4

	feedback truncation
}

// NewDecoder returns a Decoder that recognises VXLAN on UDP destination
// ports 4789, 8472 and udpPorts.
func NewDecoder(udpPorts []uint16) *Decoder {
	d := &Decoder{ports: map[uint16]bool{PortVXLAN: true, PortVXLANLinux: true}}
	for _, p := range udpPorts {
		d.ports[p] = true
	}
	return d
}

// Decode decodes one Ethernet frame seen as described by m. The returned
// Observation holds a copy of the ICMP echo data in Payload and shares no
// memory with frame; Frame is left nil. Decode returns an error for anything
// that is not an IPv4 ICMP packet, plain or in VXLAN, or that is cut short.
func (d *Decoder) Decode(frame []byte, m Meta) (Observation, error) {
	o := Observation{Point: m.Point, At: m.At, Stamp: m.Stamp, Dir: m.Dir}
	ip, err := d.decodeIPv4(&d.eth, &d.ip, frame, "outer")
	if err != nil {
		return Observation{}, err
	}
	switch ip.Protocol {
	case layers.IPProtocolICMPv4:
	case layers.IPProtocolUDP:
		o.OuterSrc, o.OuterDst = addrs(ip)
		if ip, err = d.decodeVXLAN(ip.Payload); err != nil {
			return Observation{}, err
		}
		if ip.Protocol != layers.IPProtocolICMPv4 {
			return Observation{}, fmt.Errorf("decode inner IPv4: protocol %s, want ICMP", ip.Protocol)
		}
		o.Tunnel = TunnelVXLAN
	default:
		return Observation{}, fmt.Errorf("decode outer IPv4: protocol %s is neither ICMP nor UDP", ip.Protocol)
	}
	o.Src, o.Dst = addrs(ip)
	if err := d.decodeICMP(&o, ip.Payload); err != nil {
		return Observation{}, err
	}
	return o, nil
}

// decodeIPv4 decodes an Ethernet header and the IPv4 header after it. It
// accepts only whole, first fragments.
func (d *Decoder) decodeIPv4(eth *layers.Ethernet, ip *layers.IPv4, frame []byte, which string) (*layers.IPv4, error) {
	if err := eth.DecodeFromBytes(frame, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("decode %s Ethernet: %w", which, err)
	}
	if eth.EthernetType != layers.EthernetTypeIPv4 {
		return nil, fmt.Errorf("decode %s Ethernet: ethertype %s, want IPv4", which, eth.EthernetType)
	}
	d.feedback = false
	if err := ip.DecodeFromBytes(eth.Payload, &d.feedback); err != nil {
		return nil, fmt.Errorf("decode %s IPv4: %w", which, err)
	}
	switch {
	case ip.Version != 4:
		return nil, fmt.Errorf("decode %s IPv4: version %d", which, ip.Version)
	case bool(d.feedback):
		return nil, fmt.Errorf("decode %s IPv4: truncated (%d bytes of %d)", which, len(eth.Payload), ip.Length)
	case ip.FragOffset != 0:
		return nil, fmt.Errorf("decode %s IPv4: fragment at offset %d", which, int(ip.FragOffset)*8)
	}
	return ip, nil
}

// decodeVXLAN decodes UDP to a tunnel port, the VXLAN header and the inner
// frame, and returns the inner IPv4 header.
func (d *Decoder) decodeVXLAN(data []byte) (*layers.IPv4, error) {
	if err := d.udp.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("decode UDP: %w", err)
	}
	if !d.ports[uint16(d.udp.DstPort)] {
		return nil, fmt.Errorf("decode UDP: port %d is not a tunnel port", d.udp.DstPort)
	}
	if err := d.vxlan.DecodeFromBytes(d.udp.Payload, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("decode VXLAN: %w", err)
	}
	return d.decodeIPv4(&d.innerEth, &d.innerIP, d.vxlan.Payload, "inner")
}

// decodeICMP fills o's ICMP fields and copies the echo data.
func (d *Decoder) decodeICMP(o *Observation, data []byte) error {
	if err := d.icmp.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
		return fmt.Errorf("decode ICMP: %w", err)
	}
	o.ICMPType = d.icmp.TypeCode.Type()
	o.ICMPID = d.icmp.Id
	o.ICMPSeq = d.icmp.Seq
	o.Payload = append([]byte(nil), d.icmp.Payload...)
	return nil
}

// addrs returns the IPv4 header's addresses (valid after a successful
// decode, which guarantees 4-byte addresses).
func addrs(ip *layers.IPv4) (src, dst netip.Addr) {
	src, _ = netip.AddrFromSlice(ip.SrcIP)
	dst, _ = netip.AddrFromSlice(ip.DstIP)
	return src, dst
}

// truncation is a gopacket.DecodeFeedback that remembers SetTruncated.
type truncation bool

func (t *truncation) SetTruncated() { *t = true }
