package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/cnitrace/cnitrace/probe"
)

// TestVXLANPayloadOffset builds a probe as the uplink carries it,
// Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[ICMP[magic...]]]]]]], and finds
// the magic at udp[vxlanPayloadOffset], where the tcpdump filter reads it.
func TestVXLANPayloadOffset(t *testing.T) {
	data := make([]byte, 56)
	binary.BigEndian.PutUint32(data, probe.Magic)
	inner := []gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{10, 244, 1, 2}, DstIP: net.IP{10, 244, 2, 2}},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1},
		gopacket.Payload(data),
	}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 8472}
	outerIP := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 255, 1}, DstIP: net.IP{192, 168, 255, 2}}
	udp.SetNetworkLayerForChecksum(outerIP)
	frame := append([]gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv4},
		outerIP, udp, &layers.VXLAN{ValidIDFlag: true, VNI: 1},
	}, inner...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, frame...); err != nil {
		t.Fatal(err)
	}
	udpStart := etherHeaderLen + ipv4HeaderLen
	b := buf.Bytes()
	if got := binary.BigEndian.Uint32(b[udpStart+vxlanPayloadOffset:]); got != probe.Magic {
		t.Errorf("udp[%d:4] = %#x, want the magic %#x", vxlanPayloadOffset, got, probe.Magic)
	}
	if i := bytes.Index(b[udpStart:], data[:4]); i != vxlanPayloadOffset {
		t.Errorf("magic found at udp[%d], want udp[%d]", i, vxlanPayloadOffset)
	}
	if got := binary.BigEndian.Uint32(b[udpStart+50:]); got == probe.Magic {
		t.Errorf("udp[50:4] holds the magic: the derivation above is wrong")
	}
}

func TestTcpdumpFilter(t *testing.T) {
	if got, want := tcpdumpFilter(0x636e7431, 0, 8472), "icmp[8:4] = 0x636e7431 or (udp dst port 8472 and udp[58:4] = 0x636e7431)"; got != want {
		t.Errorf("cnitrace's probes: got %q, want %q", got, want)
	}
	if got, want := tcpdumpFilter(0x636e7431, pingPatternAt, 8472), "icmp[24:4] = 0x636e7431 or (udp dst port 8472 and udp[74:4] = 0x636e7431)"; got != want {
		t.Errorf("ping -p: got %q, want %q", got, want)
	}
}

func TestParseTcpdumpCounts(t *testing.T) {
	stderr := "tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n" +
		"600 packets captured\n612 packets received by filter\n0 packets dropped by kernel\n"
	c, ok := parseTcpdumpCounts(stderr)
	if want := (tcpdumpCounts{Captured: 600, Received: 612}); !ok || c != want {
		t.Errorf("got %+v, %v; want %+v, true", c, ok, want)
	}
	if _, ok := parseTcpdumpCounts("tcpdump: eth9: No such device exists\n"); ok {
		t.Errorf("no counts: got ok")
	}
	if c, ok := parseTcpdumpCounts("1 packet captured\n"); !ok || c.Captured != 1 {
		t.Errorf("singular: got %+v, %v", c, ok)
	}
}
