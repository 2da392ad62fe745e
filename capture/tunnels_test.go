package capture

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// tunnelCase is a probe frame as a layer stack, what the filter must say
// about it and, when accepted, what the decoder must find.
type tunnelCase struct {
	name   string
	stack  func() stack
	accept bool
	tunnel string
	outer  [2]netip.Addr // zero when plain
	inner  [2]netip.Addr
	typ    uint8
}

var wrongMagic = probeData(0xdeadbeef, 56)

// tunnelCases are run on an Ethernet and on a raw-IP link each.
func tunnelCases() []tunnelCase {
	u4, u6 := [2]netip.Addr{underA, underB}, [2]netip.Addr{under6A, under6B}
	o4, o6 := [2]netip.Addr{overlA, overlB}, [2]netip.Addr{overl6A, overl6B}
	return []tunnelCase{
		// IP[ICMP[magic]], IPv6[ICMPv6 echo request or reply[magic]]
		{"plain v4", request4, true, "", [2]netip.Addr{}, o4, 8},
		{"plain v6 request", request6, true, "", [2]netip.Addr{}, o6, 128},
		{"plain v6 reply", func() stack { return echo(129, overl6B, overl6A, probeHi) }, true, "", [2]netip.Addr{}, [2]netip.Addr{overl6B, overl6A}, 129},
		{"plain v6 wrong magic", func() stack { return echo(128, overl6A, overl6B, wrongMagic) }, false, "", [2]netip.Addr{}, o6, 128},
		// IPv6[ICMPv6 neighbour solicitation (135)[magic]]: not an echo
		{"plain v6 not echo", func() stack { return echo(135, overl6A, overl6B, probeHi) }, false, "", [2]netip.Addr{}, o6, 135},
		// IPv4[UDP:6081[Geneve[Ethernet[IPv4[ICMP[magic]]]]]]
		{"geneve", func() stack { return overGeneve(6081, 0, underA, underB, request4()) }, true, TunnelGeneve, u4, o4, 8},
		{"geneve 8 bytes of options", func() stack { return overGeneve(6081, 8, underA, underB, request4()) }, true, TunnelGeneve, u4, o4, 8},
		// Opt Len 63 words: past gopacket's uint8 option offset
		{"geneve 252 bytes of options", func() stack { return overGeneve(6081, 252, underA, underB, request4()) }, true, TunnelGeneve, u4, o4, 8},
		{"geneve outer options", func() stack { return withOptions(overGeneve(6081, 8, underA, underB, request4()), 7) }, true, TunnelGeneve, u4, o4, 8},
		{"geneve inner options", func() stack { return overGeneve(6081, 4, underA, underB, withOptions(request4(), 6)) }, true, TunnelGeneve, u4, o4, 8},
		{"geneve v6 inside", func() stack { return overGeneve(6081, 8, underA, underB, request6()) }, true, TunnelGeneve, u4, o6, 128},
		{"geneve v6 underlay", func() stack { return overGeneve(6081, 4, under6A, under6B, request4()) }, true, TunnelGeneve, u6, o4, 8},
		{"geneve on 6082", func() stack { return overGeneve(6082, 8, underA, underB, request4()) }, false, "", u4, o4, 8},
		{"geneve wrong magic", func() stack { return overGeneve(6081, 8, underA, underB, echo(8, overlA, overlB, wrongMagic)) }, false, "", u4, o4, 8},
		{"geneve v6 wrong magic", func() stack { return overGeneve(6081, 8, underA, underB, echo(128, overl6A, overl6B, wrongMagic)) }, false, "", u4, o6, 128},
		{"geneve inner fragment", func() stack { return fragment(overGeneve(6081, 8, underA, underB, request4()), 1, 185) }, false, "", u4, o4, 8},
		{"geneve outer fragment", func() stack { return fragment(overGeneve(6081, 8, underA, underB, request4()), 0, 185) }, false, "", u4, o4, 8},
		// IP[UDP:4789[VXLAN[Ethernet[IPv6[ICMPv6[magic]]]]]]
		{"vxlan v6 inside", func() stack { return overVXLAN(4789, underA, underB, request6()) }, true, TunnelVXLAN, u4, o6, 128},
		{"vxlan v6 underlay", func() stack { return overVXLAN(8472, under6A, under6B, request6()) }, true, TunnelVXLAN, u6, o6, 128},
		{"vxlan v6 wrong magic", func() stack { return overVXLAN(4789, underA, underB, echo(129, overl6B, overl6A, wrongMagic)) }, false, "", u4, o6, 129},
		// IPv4[IPv4[ICMP[magic]]]
		{"ipip", func() stack { return overIPIP(request4()) }, true, TunnelIPIP, u4, o4, 8},
		{"ipip reply", func() stack { return overIPIP(echo(0, overlB, overlA, probeHi)) }, true, TunnelIPIP, u4, [2]netip.Addr{overlB, overlA}, 0},
		{"ipip both options", func() stack { return withOptions(overIPIP(withOptions(request4(), 15)), 15) }, true, TunnelIPIP, u4, o4, 8},
		{"ipip wrong magic", func() stack { return overIPIP(echo(8, overlA, overlB, wrongMagic)) }, false, "", u4, o4, 8},
		{"ipip inner fragment", func() stack { return fragment(overIPIP(request4()), 1, 185) }, false, "", u4, o4, 8},
		{"ipip outer fragment", func() stack { return fragment(overIPIP(request4()), 0, 185) }, false, "", u4, o4, 8},
		// IPv4[IPv4[IPv6...]]: IPIP carries IPv4 only
		{"ipip carrying v6", func() stack { return append(stack{ipLayer(4, underA, underB)}, request6()...) }, false, "", u4, o6, 128},
	}
}

func TestTunnelFilterAndDecode(t *testing.T) {
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		vm := filterVM(t, link, []uint16{9472})
		d := NewDecoderFor(link, []uint16{9472})
		for _, tc := range tunnelCases() {
			t.Run(link.String()+"/"+tc.name, func(t *testing.T) {
				frame := onLink(t, link, tc.stack())
				n, err := vm.Run(frame)
				if err != nil {
					t.Fatalf("run filter: %v", err)
				}
				if got := n > 0; got != tc.accept {
					t.Fatalf("filter: got accept=%v, want %v; frame % x", got, tc.accept, frame)
				}
				if !tc.accept {
					return
				}
				o, err := d.Decode(frame, Meta{Point: "p0"})
				if err != nil {
					t.Fatal(err)
				}
				checkObservation(t, o, tc)
				if o.Link != link {
					t.Errorf("got link %s, want %s", o.Link, link)
				}
			})
		}
	}
}

func checkObservation(t *testing.T, o Observation, tc tunnelCase) {
	t.Helper()
	if o.Tunnel != tc.tunnel || o.OuterSrc != tc.outer[0] || o.OuterDst != tc.outer[1] {
		t.Errorf("got tunnel %q outer %v > %v, want %q %v > %v", o.Tunnel, o.OuterSrc, o.OuterDst, tc.tunnel, tc.outer[0], tc.outer[1])
	}
	if o.Src != tc.inner[0] || o.Dst != tc.inner[1] {
		t.Errorf("got %v > %v, want %v > %v", o.Src, o.Dst, tc.inner[0], tc.inner[1])
	}
	if o.ICMPType != tc.typ || o.ICMPID != 7 || o.ICMPSeq != 1 {
		t.Errorf("got ICMP type %d id %d seq %d, want %d 7 1", o.ICMPType, o.ICMPID, o.ICMPSeq, tc.typ)
	}
	if !bytes.Equal(o.Payload, probeHi) {
		t.Errorf("got payload % x, want the probe data", o.Payload)
	}
}

// TestDecodeSameOnBothLinks: a packet seen on a raw-IP device gives the
// observation it gives behind an Ethernet header, but for Link.
func TestDecodeSameOnBothLinks(t *testing.T) {
	eth, raw := NewDecoderFor(LinkEthernet, nil), NewDecoderFor(LinkRawIP, nil)
	for _, tc := range tunnelCases() {
		if !tc.accept {
			continue
		}
		oe, err := eth.Decode(onLink(t, LinkEthernet, tc.stack()), Meta{Point: "p1"})
		if err != nil {
			t.Fatalf("%s on Ethernet: %v", tc.name, err)
		}
		or, err := raw.Decode(onLink(t, LinkRawIP, tc.stack()), Meta{Point: "p1"})
		if err != nil {
			t.Fatalf("%s on raw IP: %v", tc.name, err)
		}
		if oe.Link != LinkEthernet || or.Link != LinkRawIP {
			t.Errorf("%s: got links %s and %s", tc.name, oe.Link, or.Link)
		}
		or.Link = LinkEthernet
		if !equalObservations(oe, or) {
			t.Errorf("%s:\nEthernet %+v\nraw IP   %+v", tc.name, oe, or)
		}
	}
}

func equalObservations(a, b Observation) bool {
	return reflect.DeepEqual(a, b)
}

func TestDecodeTunnelErrors(t *testing.T) {
	tests := []struct {
		name    string
		link    LinkType
		stack   func() stack
		wantErr string
	}{
		{"geneve on 6082", LinkEthernet, func() stack { return overGeneve(6082, 8, underA, underB, request4()) }, "port 6082 is not a tunnel port"},
		{"geneve inner fragment", LinkRawIP, func() stack { return fragment(overGeneve(6081, 8, underA, underB, request4()), 1, 185) }, "inner IPv4: fragment"},
		{"ipip inner fragment", LinkEthernet, func() stack { return fragment(overIPIP(request4()), 1, 185) }, "inner IPv4: fragment"},
		{"ipip outer fragment", LinkRawIP, func() stack { return fragment(overIPIP(request4()), 0, 185) }, "outer IPv4: fragment"},
		{"ipip carrying v6", LinkEthernet, func() stack { return append(stack{ipLayer(4, underA, underB)}, request6()...) }, "decode inner IPv4"},
		{"v6 not echo", LinkRawIP, func() stack { return echo(135, overl6A, overl6B, probeHi) }, "not an echo"},
		{"v6 carrying ICMPv4", LinkEthernet, func() stack { return stack{ipLayer(1, overl6A, overl6B), gopacketPayload(icmpEcho(8, 7, 1, probeHi))} }, "neither ICMPv6"},
		{"v4 carrying ICMPv6", LinkRawIP, func() stack { return stack{ipLayer(58, overlA, overlB), gopacketPayload(icmpEcho(128, 7, 1, probeHi))} }, "neither ICMPv4"},
		{"vxlan v6 carrying udp", LinkEthernet, func() stack {
			return overVXLAN(4789, underA, underB, stack{ipLayer(17, overl6A, overl6B), gopacketPayload(make([]byte, 16))})
		}, "decode inner UDP: no probe token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoderFor(tt.link, nil).Decode(onLink(t, tt.link, tt.stack()), Meta{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeGeneveHeader covers what the filter also checks: the version,
// the protocol type and options running past the packet.
func TestDecodeGeneveHeader(t *testing.T) {
	frame := onLink(t, LinkRawIP, overGeneve(6081, 8, underA, underB, request4()))
	const geneveAt = 20 + 8
	tests := []struct {
		name    string
		corrupt func(b []byte)
		wantErr string
	}{
		{"version 1", func(b []byte) { b[geneveAt] |= 0x40 }, "version 1"},
		{"protocol IPv4", func(b []byte) { b[geneveAt+2], b[geneveAt+3] = 0x08, 0x00 }, "protocol type 0x0800"},
		{"options past the end", func(b []byte) { b[geneveAt] |= 0x3f }, "truncated options"},
	}
	vm := filterVM(t, LinkRawIP, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(frame)
			tt.corrupt(b)
			_, err := NewDecoderFor(LinkRawIP, nil).Decode(b, Meta{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if n, _ := vm.Run(b); n != 0 {
				t.Errorf("filter accepted it")
			}
		})
	}
}

// TestTunnelTruncated cuts every accepted frame at every length: the
// decoder errs on each strict prefix, and the filter passes a prefix only
// once it holds the whole magic.
func TestTunnelTruncated(t *testing.T) {
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		vm, d := filterVM(t, link, nil), NewDecoderFor(link, nil)
		for _, tc := range tunnelCases() {
			if !tc.accept {
				continue
			}
			frame := onLink(t, link, tc.stack())
			magicEnd := bytes.Index(frame, probeHi[:4]) + 4
			for n := range len(frame) {
				if o, err := d.Decode(frame[:n], Meta{}); err == nil {
					t.Errorf("%s/%s: %d of %d bytes: got %+v, want an error", link, tc.name, n, len(frame), o)
				}
				if got, _ := vm.Run(frame[:n]); (got > 0) != (n >= magicEnd) {
					t.Errorf("%s/%s: %d of %d bytes (magic ends at %d): filter accept=%v", link, tc.name, n, len(frame), magicEnd, got > 0)
				}
			}
		}
	}
}

func TestLinkTypeOf(t *testing.T) {
	tests := []struct {
		arphrd uint16
		want   LinkType
		ok     bool
	}{
		{1, LinkEthernet, true},    // ARPHRD_ETHER: veth, bridge, vxlan, geneve
		{772, LinkEthernet, true},  // ARPHRD_LOOPBACK
		{0xfffe, LinkRawIP, true},  // ARPHRD_NONE: tun, wireguard
		{768, LinkRawIP, true},     // ARPHRD_TUNNEL: ipip
		{769, LinkRawIP, true},     // ARPHRD_TUNNEL6: ip6tnl
		{776, LinkRawIP, true},     // ARPHRD_SIT
		{519, LinkRawIP, true},     // ARPHRD_RAWIP
		{778, LinkEthernet, false}, // ARPHRD_IPGRE: a GRE header, not handled
		{32, LinkEthernet, false},  // ARPHRD_INFINIBAND
	}
	for _, tt := range tests {
		got, err := LinkTypeOf(tt.arphrd)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("LinkTypeOf(%d): got %s, %v; want %s, ok=%v", tt.arphrd, got, err, tt.want, tt.ok)
		}
	}
}

func TestFilterForUnknownLink(t *testing.T) {
	if _, err := FilterFor(LinkType(9), testMagic, nil); err == nil || !strings.Contains(err.Error(), "unknown link type") {
		t.Errorf("got error %v, want one naming the unknown link type", err)
	}
}

// TestFilterMaxPortsBothLinks: the longest program (all VXLAN ports) still
// assembles for either link type and still reaches its last port.
func TestFilterMaxPortsBothLinks(t *testing.T) {
	ports := manyPorts(maxTunnelPorts - 2)
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		vm := filterVM(t, link, ports)
		last := ports[len(ports)-1]
		for _, s := range []stack{overVXLAN(last, underA, underB, request6()), overGeneve(6081, 252, under6A, under6B, request6())} {
			if n, err := vm.Run(onLink(t, link, s)); err != nil || n == 0 {
				t.Errorf("%s: probe rejected (%v)", link, err)
			}
		}
	}
}

func filterVM(t testing.TB, link LinkType, ports []uint16) *bpf.VM {
	t.Helper()
	prog, err := FilterFor(link, testMagic, ports)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("load filter into VM: %v", err)
	}
	return vm
}
