package capture

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

func TestDecode(t *testing.T) {
	meta := Meta{Point: "p3", At: time.Unix(1700000000, 123456789), Stamp: StampCopy, Dir: topology.TX}
	tests := []struct {
		name       string
		frame      []byte
		tunnel     string
		outer      [2]netip.Addr
		inner      [2]netip.Addr
		icmpType   uint8
		payloadLen int
	}{
		// Ethernet[IPv4[ICMP echo request]]
		{"plain request", plainRequest(), "", [2]netip.Addr{}, [2]netip.Addr{overlA, overlB}, 8, 56},
		// Ethernet[IPv4[ICMP echo reply]]
		{"plain reply", ether(0x0800, ip4(1, 5, 0, overlB, overlA, icmpEcho(0, 7, 1, probeHi))),
			"", [2]netip.Addr{}, [2]netip.Addr{overlB, overlA}, 0, 56},
		// Ethernet[IPv4(IHL 7)[ICMP echo request]]
		{"plain with IP options", ether(0x0800, ip4(1, 7, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi))),
			"", [2]netip.Addr{}, [2]netip.Addr{overlA, overlB}, 8, 56},
		// Ethernet[IPv4[ICMP echo request[8 bytes]]] + Ethernet padding to 60 bytes
		{"short echo with ethernet padding",
			append(ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi[:4]))), make([]byte, 8)...),
			"", [2]netip.Addr{}, [2]netip.Addr{overlA, overlB}, 8, 4},
		// Ethernet[IPv4[UDP:8472[VXLAN[Ethernet[IPv4[ICMP echo request]]]]]]
		{"vxlan 8472", vxlanRequest(8472, 5, 5), TunnelVXLAN,
			[2]netip.Addr{underA, underB}, [2]netip.Addr{overlA, overlB}, 8, 56},
		// Ethernet[IPv4[UDP:4789[VXLAN[Ethernet[IPv4[ICMP echo request]]]]]]
		{"vxlan 4789", vxlanRequest(4789, 5, 5), TunnelVXLAN,
			[2]netip.Addr{underA, underB}, [2]netip.Addr{overlA, overlB}, 8, 56},
		// Ethernet[IPv4(IHL 6)[UDP:9472[VXLAN[Ethernet[IPv4(IHL 6)[ICMP echo request]]]]]]
		{"vxlan extra port with options", vxlanRequest(9472, 6, 6), TunnelVXLAN,
			[2]netip.Addr{underA, underB}, [2]netip.Addr{overlA, overlB}, 8, 56},
	}
	d := NewDecoderFor(LinkEthernet, []uint16{9472})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := bytes.Clone(tt.frame)
			o, err := d.Decode(frame, meta)
			if err != nil {
				t.Fatal(err)
			}
			if o.Point != meta.Point || !o.At.Equal(meta.At) || o.Stamp != meta.Stamp || o.Dir != meta.Dir {
				t.Errorf("got meta %s %v %s %s, want %+v", o.Point, o.At, o.Stamp, o.Dir, meta)
			}
			if o.Tunnel != tt.tunnel || o.OuterSrc != tt.outer[0] || o.OuterDst != tt.outer[1] {
				t.Errorf("got tunnel %q outer %v > %v, want %q %v > %v", o.Tunnel, o.OuterSrc, o.OuterDst, tt.tunnel, tt.outer[0], tt.outer[1])
			}
			if o.Src != tt.inner[0] || o.Dst != tt.inner[1] {
				t.Errorf("got %v > %v, want %v > %v", o.Src, o.Dst, tt.inner[0], tt.inner[1])
			}
			if o.ICMPType != tt.icmpType || o.ICMPID != 7 || o.ICMPSeq != 1 {
				t.Errorf("got ICMP type %d id %d seq %d, want %d 7 1", o.ICMPType, o.ICMPID, o.ICMPSeq, tt.icmpType)
			}
			if !bytes.Equal(o.Payload, probeHi[:tt.payloadLen]) {
				t.Errorf("got payload % x, want % x", o.Payload, probeHi[:tt.payloadLen])
			}
			if o.Frame != nil {
				t.Errorf("Decode set Frame")
			}
			clear(frame) // the observation must not share memory with the frame
			if !bytes.Equal(o.Payload, probeHi[:tt.payloadLen]) {
				t.Errorf("payload changed with the frame: it is not a copy")
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		wantErr string
	}{
		{"empty", nil, "Ethernet"},
		// Ethernet[ARP]
		{"arp", ether(0x0806, make([]byte, 28)), "want IPv4 or IPv6"},
		// Ethernet[IPv6 with version 0 and no payload]
		{"zero ipv6", ether(0x86dd, make([]byte, 40)), "IPv6"},
		// Ethernet[IPv4[TCP, all zero]]: no probe, no reply
		{"tcp", ether(0x0800, ip4(6, 5, 0, overlA, overlB, make([]byte, 20))), "decode TCP"},
		// Ethernet[IPv4[GRE]]
		{"gre", ether(0x0800, ip4(47, 5, 0, overlA, overlB, make([]byte, 20))), "neither ICMPv4, TCP, UDP nor IPIP"},
		// Ethernet[IPv4[UDP:53[...]]]
		{"udp on another port", vxlanRequest(53, 5, 5), "not a tunnel port"},
		// Ethernet[IPv4[UDP:8472[VXLAN[Ethernet[IPv4[UDP]]]]]]
		{"vxlan inner udp", ether(0x0800, ip4(17, 5, 0, underA, underB, udp(1, 8472, vxlan(1,
			ether(0x0800, ip4(17, 5, 0, overlA, overlB, udp(1, 2, nil))))))), "no probe token"},
		// Ethernet[IPv4 fragment at offset 1480[...]]
		{"later fragment", ether(0x0800, ip4(1, 5, 185, overlA, overlB, probeHi)), "fragment at offset 1480"},
		// Ethernet[IPv4 with IHL 4]
		{"bad IHL", ether(0x0800, ip4(1, 4, 0, overlA, overlB, make([]byte, 20))), "IPv4"},
		// Ethernet[IPv4 claiming version 6]
		{"bad version", ether(0x0800, append([]byte{0x65}, ip4(1, 5, 0, overlA, overlB, probeHi)[1:]...)), "version 6"},
		// Ethernet[IPv4[ICMP header cut]]
		{"short icmp", ether(0x0800, ip4(1, 5, 0, overlA, overlB, make([]byte, 5))), "ICMP"},
	}
	d := NewDecoderFor(LinkEthernet, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Decode(tt.frame, Meta{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeTruncated cuts tunnelled and plain frames at every length: each
// strict prefix must give an error, never a panic or a partial observation.
func TestDecodeTruncated(t *testing.T) {
	d := NewDecoderFor(LinkEthernet, nil)
	for _, frame := range [][]byte{plainRequest(), vxlanRequest(8472, 6, 6)} {
		for n := 0; n < len(frame); n++ {
			if o, err := d.Decode(frame[:n], Meta{}); err == nil {
				t.Errorf("%d of %d bytes: got %+v, want an error", n, len(frame), o)
			}
		}
		if _, err := d.Decode(frame, Meta{}); err != nil {
			t.Errorf("whole frame: %v", err)
		}
	}
}

// FuzzDecode feeds arbitrary frames to the decoder, as Ethernet or raw-IP
// frames: it must never panic, and whatever it accepts must be a consistent
// observation that shares no memory with the frame.
func FuzzDecode(f *testing.F) {
	for _, frame := range [][]byte{
		plainRequest(), vxlanRequest(8472, 5, 5), vxlanRequest(4789, 6, 7), vxlanRequest(9472, 5, 5),
		ether(0x0806, make([]byte, 28)), ether(0x0800, ip4(1, 5, 185, overlA, overlB, probeHi)),
	} {
		f.Add(frame, false)
	}
	addTunnelSeeds(f)
	addTransportSeeds(f)
	for _, name := range append([]string{recordedVXLAN}, handBuiltRecordings()...) {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		obs, err := ReadPcapNG(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		for _, o := range obs {
			f.Add(o.Frame, o.Link == LinkRawIP)
		}
	}
	decs := map[bool]*Decoder{false: NewDecoderFor(LinkEthernet, []uint16{9472}), true: NewDecoderFor(LinkRawIP, []uint16{9472})}
	f.Fuzz(func(t *testing.T, frame []byte, raw bool) {
		o, err := decs[raw].Decode(frame, Meta{Point: "p0"})
		if err != nil {
			return
		}
		checkFuzzedObservation(t, o, frame)
	})
}

func checkFuzzedObservation(t *testing.T, o Observation, frame []byte) {
	t.Helper()
	if !o.Src.IsValid() || o.Src.Is4() != o.Dst.Is4() || o.Point != "p0" || (o.Src.Is6() && o.Proto == ProtoICMP && !o.IsRequest() && !o.IsReply()) {
		t.Fatalf("accepted with bad addresses, type or point: %+v", o)
	}
	switch o.Tunnel {
	case "":
		if o.OuterSrc.IsValid() || o.OuterDst.IsValid() {
			t.Fatalf("plain with outer %v > %v", o.OuterSrc, o.OuterDst)
		}
	case TunnelVXLAN, TunnelGeneve, TunnelIPIP:
		if !o.OuterSrc.IsValid() || o.OuterSrc.Is4() != o.OuterDst.Is4() || (o.Tunnel == TunnelIPIP && !(o.OuterSrc.Is4() && o.Src.Is4())) {
			t.Fatalf("tunnel %q with outer %v > %v, inner %v", o.Tunnel, o.OuterSrc, o.OuterDst, o.Src)
		}
	default:
		t.Fatalf("unknown tunnel %q", o.Tunnel)
	}
	if len(o.Payload) > len(frame) {
		t.Fatalf("payload of %d bytes from a frame of %d", len(o.Payload), len(frame))
	}
	if (o.Token != nil && len(o.Token) != TokenLen) || (o.Proto != ProtoICMP && o.Payload != nil) || o.Proto > ProtoUnreachable {
		t.Fatalf("token % x, payload % x for %s", o.Token, o.Payload, o.Proto)
	}
	if o.Proto == ProtoTCP && o.Token == nil && o.TCPFlags&TCPFlagACK == 0 {
		t.Fatalf("TCP without token or acknowledgement: %+v", o)
	}
	before, token := bytes.Clone(o.Payload), bytes.Clone(o.Token)
	for i := range frame {
		frame[i] ^= 0xff
	}
	if !bytes.Equal(before, o.Payload) || !bytes.Equal(token, o.Token) {
		t.Fatalf("payload or token shares memory with the frame")
	}
}
