package capture

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

func TestFilterVerdicts(t *testing.T) {
	prog, err := FilterFor(LinkEthernet, testMagic, []uint16{9472, 8472})
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("load filter into VM: %v", err)
	}
	other := probeData(0xdeadbeef, 56)
	tests := []struct {
		name   string
		frame  []byte
		accept bool
	}{
		// Ethernet[IPv4[ICMP[magic]]]
		{"plain request", plainRequest(), true},
		// Ethernet[IPv4[ICMP echo reply[magic]]]
		{"plain reply", ether(0x0800, ip4(1, 5, 0, overlB, overlA, icmpEcho(0, 7, 1, probeHi))), true},
		// Ethernet[IPv4(IHL 6)[ICMP[magic]]]
		{"plain with IP options", ether(0x0800, ip4(1, 6, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))), true},
		// Ethernet[IPv4[UDP:8472[VXLAN[Ethernet[IPv4[ICMP[magic]]]]]]]
		{"vxlan 8472", vxlanRequest(8472, 5, 5), true},
		// Ethernet[IPv4[UDP:4789[VXLAN[Ethernet[IPv4[ICMP[magic]]]]]]]
		{"vxlan 4789", vxlanRequest(4789, 5, 5), true},
		// Ethernet[IPv4[UDP:9472[VXLAN[...]]]]: an extra port passed by the caller
		{"vxlan on extra port", vxlanRequest(9472, 5, 5), true},
		// Ethernet[IPv4(IHL 6)[UDP[VXLAN[Ethernet[IPv4[ICMP[magic]]]]]]]
		{"vxlan outer IP options", vxlanRequest(8472, 6, 5), true},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4(IHL 6)[ICMP[magic]]]]]]]
		{"vxlan inner IP options", vxlanRequest(8472, 5, 6), true},
		// Ethernet[IPv4(IHL 15)[UDP[VXLAN[Ethernet[IPv4(IHL 15)[ICMP[magic]]]]]]]
		{"vxlan both max IHL", vxlanRequest(8472, 15, 15), true},
		// Ethernet[IPv4[ICMP[other magic]]]
		{"plain wrong magic", ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, other))), false},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[ICMP[other magic]]]]]]]
		{"vxlan wrong magic", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
			ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, other))))))), false},
		// Ethernet[IPv4[UDP:9999[VXLAN[Ethernet[IPv4[ICMP[magic]]]]]]]
		{"udp on another port", vxlanRequest(9999, 5, 5), false},
		// Ethernet[IPv4[UDP:53[magic...]]]: a UDP probe (transport_test.go has the rest)
		{"udp carrying magic", ether(0x0800, ip4(17, 5, 0, overlA, overlB, udp(1, 53, probeHi))), true},
		// Ethernet[IPv4[UDP:53[5 bytes, magic...]]]: not where a UDP or DNS probe has it
		{"udp carrying magic at 5", ether(0x0800, ip4(17, 5, 0, overlA, overlB, udp(1, 53, append(make([]byte, 5), probeHi...)))), false},
		// Ethernet[IPv4[TCP-like bytes[magic]]]
		{"tcp", ether(0x0800, ip4(6, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))), false},
		// Ethernet[IPv6 of zeros]: next header 0 (hop-by-hop) is not followed
		{"ipv6 zeros", ether(0x86dd, make([]byte, 40+8+56)), false},
		// Ethernet[ARP]
		{"arp", ether(0x0806, make([]byte, 28)), false},
		// Ethernet[IPv4 fragment, offset 185[ICMP-looking bytes[magic]]]
		{"later fragment", ether(0x0800, ip4(1, 5, 185, overlA, overlB, icmpEcho(8, 7, 1, probeHi))), false},
		// Ethernet[IPv4 first fragment, MF set[ICMP[magic]]]
		{"first fragment", ether(0x0800, ip4(1, 5, 0x2000, overlA, overlB, icmpEcho(8, 7, 1, probeHi))), true},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4 fragment, offset 8[ICMP[magic]]]]]]]
		{"vxlan inner later fragment", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
			ether(0x0800, ip4(1, 5, 8, overlA, overlB, icmpEcho(8, 7, 1, probeHi))))))), false},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[ARP]]]]]
		{"vxlan inner arp", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
			ether(0x0806, make([]byte, 28)))))), false},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[UDP[magic...]]]]]]]: the 8 bytes
		// after the inner IPv4 header read as UDP, and its payload opens with the
		// magic: a UDP probe
		{"vxlan inner udp", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
			ether(0x0800, ip4(17, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))))))), true},
		// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[UDP[8 bytes, magic...]]]]]]]
		{"vxlan inner udp, magic at 8", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
			ether(0x0800, ip4(17, 5, 0, overlA, overlB, udp(1, 2, icmpEcho(8, 7, 1, probeHi)))))))), false},
		{"empty", nil, false},
		{"truncated ethernet", plainRequest()[:13], false},
		{"truncated before magic", plainRequest()[:14+20+8+3], false},
		{"truncated at magic end", plainRequest()[:14+20+8+4], true},
		{"truncated vxlan inner IP", vxlanRequest(8472, 5, 5)[:14+20+8+8+14+10], false},
		{"truncated vxlan before magic", vxlanRequest(8472, 5, 5)[:14+20+8+8+14+20+8+2], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatalf("run filter: %v", err)
			}
			if got := n > 0; got != tt.accept {
				t.Errorf("got accept=%v (%d), want %v", got, n, tt.accept)
			}
			if tt.accept && n != snapLen {
				t.Errorf("accepted %d bytes, want the whole packet (%d)", n, snapLen)
			}
		})
	}
}

func TestFilterPorts(t *testing.T) {
	tests := []struct {
		name    string
		ports   []uint16
		wantErr string
	}{
		{"defaults only", nil, ""},
		{"duplicates", []uint16{8472, 8472, 4789}, ""},
		{"port zero", []uint16{0}, "port 0"},
		{"too many", manyPorts(maxTunnelPorts), "at most"},
		{"as many as allowed", manyPorts(maxTunnelPorts - 2), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := FilterFor(LinkEthernet, testMagic, tt.ports)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append(tt.ports, PortVXLAN, PortVXLANLinux) {
				if n, _ := vm.Run(vxlanRequest(p, 5, 5)); n == 0 {
					t.Errorf("VXLAN on port %d rejected", p)
				}
			}
		})
	}
}

// manyPorts returns n distinct ports other than the defaults.
func manyPorts(n int) []uint16 {
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = uint16(10000 + i)
	}
	return ports
}

// FuzzFilterPassesDecodable checks the filter against the decoder: every
// frame the decoder accepts as a TCP or UDP probe, a reply, or a quote of
// one, and every ICMP echo it accepts with the magic at the start of the
// echo data, must pass the filter of the same link type, or probes would
// be lost in the kernel.
func FuzzFilterPassesDecodable(f *testing.F) {
	for _, frame := range [][]byte{plainRequest(), vxlanRequest(8472, 5, 5), vxlanRequest(4789, 6, 7), vxlanRequest(9472, 15, 5)} {
		f.Add(frame, false)
	}
	addTunnelSeeds(f)
	addTransportSeeds(f)
	vms := map[LinkType]*bpf.VM{}
	decs := map[LinkType]*Decoder{}
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		vms[link] = filterVM(f, link, []uint16{9472})
		decs[link] = NewDecoderFor(link, []uint16{9472})
	}
	f.Fuzz(func(t *testing.T, frame []byte, raw bool) {
		link := LinkEthernet
		if raw {
			link = LinkRawIP
		}
		o, err := decs[link].Decode(frame, Meta{})
		if err != nil || (o.Proto == ProtoICMP && (len(o.Payload) < 4 || binary.BigEndian.Uint32(o.Payload) != testMagic)) {
			return // an ICMP message without the magic is the report's to ignore
		}
		if n, err := vms[link].Run(frame); err != nil || n == 0 {
			t.Fatalf("decoder accepts a probe the %s filter rejects (%v): % x", link, err, frame)
		}
	})
}

// addTunnelSeeds adds every tunnelCases frame on both link types as a
// (frame, raw) seed.
func addTunnelSeeds(f *testing.F) {
	for _, tc := range tunnelCases() {
		f.Add(onLink(f, LinkEthernet, tc.stack()), false)
		f.Add(onLink(f, LinkRawIP, tc.stack()), true)
	}
}
