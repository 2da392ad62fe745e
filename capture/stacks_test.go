package capture

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frames for the Geneve, IPIP and IPv6 tests, built from gopacket layers
// and serialized with gopacket.SerializeLayers (lengths fixed, checksums
// left zero as on captured TX packets, design.md fact 2). A stack is the
// list of layers from the outer IP header inwards; onLink puts it on a
// link: behind an Ethernet header, or bare on a raw-IP link.

type stack []gopacket.SerializableLayer

var (
	under6A = netip.MustParseAddr("fd99::1")
	under6B = netip.MustParseAddr("fd99::2")
	overl6A = netip.MustParseAddr("fd98::a")
	overl6B = netip.MustParseAddr("fd98::b")
)

// onLink serializes s as a frame of the given link type.
func onLink(t testing.TB, link LinkType, s stack) []byte {
	t.Helper()
	return serialize(t, link, s, gopacket.SerializeOptions{FixLengths: true})
}

// onLinkChecksummed is onLink with every checksum filled in, for frames a
// kernel receives: it drops IPv4 headers, ICMP messages and TCP segments
// with bad ones, and netfilter's REJECT answers none of them.
func onLinkChecksummed(t testing.TB, link LinkType, s stack) []byte {
	t.Helper()
	var ip gopacket.NetworkLayer
	for _, l := range s {
		switch l := l.(type) {
		case *layers.IPv4:
			ip = l
		case *layers.IPv6:
			ip = l
		case *layers.ICMPv6:
			if err := l.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
		case *layers.UDP:
			if err := l.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
		case *layers.TCP:
			if err := l.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
		}
	}
	return serialize(t, link, s, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true})
}

func serialize(t testing.TB, link LinkType, s stack, opts gopacket.SerializeOptions) []byte {
	t.Helper()
	if link == LinkEthernet {
		s = append(stack{etherFor(s)}, s...)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, s...); err != nil {
		t.Fatalf("serialize frame: %v", err)
	}
	return buf.Bytes()
}

// etherFor is the Ethernet header for an IP stack.
func etherFor(s stack) *layers.Ethernet {
	et := layers.EthernetTypeIPv4
	if _, ok := s[0].(*layers.IPv6); ok {
		et = layers.EthernetTypeIPv6
	}
	return &layers.Ethernet{SrcMAC: net.HardwareAddr(macA[:]), DstMAC: net.HardwareAddr(macB[:]), EthernetType: et}
}

// ipLayer is an IPv4 or IPv6 header, as the addresses are.
func ipLayer(proto layers.IPProtocol, src, dst netip.Addr) gopacket.SerializableLayer {
	if src.Is4() {
		return &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Id: 0x1234, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

// echo is IP[ICMP echo[data]] (or ICMPv6, as the addresses are) with ID 7
// and sequence 1. typ is the ICMP or ICMPv6 type.
func echo(typ uint8, src, dst netip.Addr, data []byte) stack {
	if src.Is4() {
		return stack{ipLayer(layers.IPProtocolICMPv4, src, dst),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 7, Seq: 1}, gopacket.Payload(data)}
	}
	return stack{ipLayer(layers.IPProtocolICMPv6, src, dst),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)},
		&layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1}, gopacket.Payload(data)}
}

// request4 and request6 are echo requests carrying the probe magic.
func request4() stack { return echo(8, overlA, overlB, probeHi) }
func request6() stack { return echo(128, overl6A, overl6B, probeHi) }

// overVXLAN is IP[UDP:port[VXLAN[Ethernet[inner]]]] between src and dst.
func overVXLAN(port uint16, src, dst netip.Addr, inner stack) stack {
	return append(stack{ipLayer(layers.IPProtocolUDP, src, dst),
		&layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)},
		&layers.VXLAN{ValidIDFlag: true, VNI: 1}, etherFor(inner)}, inner...)
}

// overGeneve is IP[UDP:port[Geneve(optBytes of options)[Ethernet[inner]]]]
// between src and dst. optBytes is a multiple of 4; each option holds at
// most 124 bytes of data, as Geneve's 5-bit option length allows.
func overGeneve(port uint16, optBytes int, src, dst netip.Addr, inner stack) stack {
	g := &layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: 1}
	for left := optBytes; left > 0; {
		n := min(left, 128)
		g.Options = append(g.Options, &layers.GeneveOption{Class: 0x0102, Type: 0x80, Data: make([]byte, n-4)})
		left -= n
	}
	return append(stack{ipLayer(layers.IPProtocolUDP, src, dst),
		&layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)}, g, etherFor(inner)}, inner...)
}

// overIPIP is IPv4[inner] from underA to underB.
func overIPIP(inner stack) stack {
	return append(stack{ipLayer(layers.IPProtocolIPv4, underA, underB)}, inner...)
}

// fragment sets the fragment offset (in 8-byte units) of the first IPv4
// header of s at or after index i.
func fragment(s stack, i int, offset uint16) stack {
	for ; i < len(s); i++ {
		if ip, ok := s[i].(*layers.IPv4); ok {
			ip.FragOffset = offset
			return s
		}
	}
	return s
}

// withOptions gives the first IPv4 header of s words-5 words of options.
func withOptions(s stack, words int) stack {
	ip := s[0].(*layers.IPv4)
	ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: uint8(words-5) * 4, OptionData: make([]byte, (words-5)*4-2)}}
	return s
}

// gopacketPayload wraps raw bytes (an ICMP message built by hand, say) as
// the innermost layer.
func gopacketPayload(b []byte) gopacket.SerializableLayer { return gopacket.Payload(b) }
