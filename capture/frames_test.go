package capture

import (
	"encoding/binary"
	"net/netip"
)

// Hand-built frames for the filter and decoder tests. Each builder wraps its
// payload in one header, so a frame reads like its layer stack:
// ether(ip4(udp(vxlan(ether(ip4(icmpEcho(...))))))). Checksums are left
// zero on purpose: captured TX packets often carry none (design.md fact 2).

const testMagic uint32 = 0x636e7431 // probe.Magic, "cnt1"

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	// Underlay (outer) and overlay (inner) addresses of the two test nodes.
	underA  = netip.MustParseAddr("10.99.0.1")
	underB  = netip.MustParseAddr("10.99.0.2")
	overlA  = netip.MustParseAddr("10.98.0.1")
	overlB  = netip.MustParseAddr("10.98.0.2")
	probeHi = probeData(testMagic, 56)
)

// probeData returns size bytes of echo data opening with magic.
func probeData(magic uint32, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, magic)
	for i := 4; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

func ether(etherType uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b[0:6], macB[:])
	copy(b[6:12], macA[:])
	binary.BigEndian.PutUint16(b[12:14], etherType)
	return append(b, payload...)
}

// ip4 builds an IPv4 header of ihl 32-bit words (5 without options; the
// options are NOPs) with the given fragment field (flags<<13 | offset).
func ip4(proto uint8, ihl int, frag uint16, src, dst netip.Addr, payload []byte) []byte {
	hl := ihl * 4
	b := make([]byte, hl, hl+len(payload))
	b[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(b[2:4], uint16(hl+len(payload)))
	binary.BigEndian.PutUint16(b[4:6], 0x1234)
	binary.BigEndian.PutUint16(b[6:8], frag)
	b[8] = 64
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	for i := 20; i < hl; i++ {
		b[i] = 1 // NOP option
	}
	return append(b, payload...)
}

func udp(src, dst uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:2], src)
	binary.BigEndian.PutUint16(b[2:4], dst)
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(payload)))
	return append(b, payload...)
}

func vxlan(vni uint32, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = 0x08 // I flag: VNI valid
	binary.BigEndian.PutUint32(b[4:8], vni<<8)
	return append(b, payload...)
}

func icmpEcho(typ uint8, id, seq uint16, data []byte) []byte {
	b := make([]byte, 8, 8+len(data))
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	return append(b, data...)
}

// Frequently used frames.

// plainRequest is Ethernet[IPv4[ICMP echo request[magic...]]].
func plainRequest() []byte {
	return ether(0x0800, ip4(1, 5, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi)))
}

// vxlanRequest is Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[ICMP echo request]]]]]]
// toward the given UDP port.
func vxlanRequest(port uint16, outerIHL, innerIHL int) []byte {
	inner := ether(0x0800, ip4(1, innerIHL, 0, overlA, overlB, icmpEcho(8, 7, 1, probeHi)))
	return ether(0x0800, ip4(17, outerIHL, 0x4000, underA, underB, udp(40000, port, vxlan(1, inner))))
}
