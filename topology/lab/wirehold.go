package lab

import (
	"encoding/binary"
	"time"
)

// ProbeHold is how long the delay line held one frame that carried a
// cnitrace probe: from the kernel's receive stamp of the frame on the
// wire link to the moment just before the delay line wrote it out of the
// other, both on CLOCK_REALTIME, the clock cnitrace's capture stamps use.
// It is the delay the frame was given, its lateness included, which is
// what a benchmark compares cnitrace's network segment with, probe by
// probe.
type ProbeHold struct {
	RunID uint64
	Seq   uint32
	Reply bool // the probe's echo reply (else its request)
	Hold  time.Duration
}

// MaxProbeHolds bounds the holds a lane keeps (the first ones; about 32
// bytes each).
const MaxProbeHolds = 8192

// probeMagic opens every cnitrace probe's payload ("cnt1"; probe.Magic:
// the lab does not import probe, the way capture's filter does not).
const probeMagic = 0x636e7431

// Ethernet, IP and tunnel constants of the frames the wire carries.
const (
	etherLen      = 14
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	protoICMP     = 1
	protoUDP      = 17
	protoICMPv6   = 58
	udpLen        = 8
	vxlanLen      = 8
	icmpLen       = 8
	ipv6Len       = 40
)

// probeToken finds a cnitrace probe's token in an Ethernet frame off the
// wire: an ICMP or ICMPv6 echo whose data opens with the magic, either
// plain IPv4 or inside VXLAN (any UDP port: a UDP payload that reads as
// VXLAN with an inner Ethernet frame carrying the echo). It never panics
// and reports false for anything else.
func probeToken(f []byte) (runID uint64, seq uint32, reply, ok bool) {
	if len(f) < etherLen || binary.BigEndian.Uint16(f[12:14]) != etherTypeIPv4 {
		return 0, 0, false, false
	}
	ip := f[etherLen:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return 0, 0, false, false
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl {
		return 0, 0, false, false
	}
	switch ip[9] {
	case protoICMP:
		return echoToken(ip[ihl:], 8, 0)
	case protoUDP:
		inner := ip[ihl:]
		if len(inner) < udpLen+vxlanLen || inner[udpLen]&0x08 == 0 { // VXLAN's I flag: a VNI follows
			return 0, 0, false, false
		}
		return innerToken(inner[udpLen+vxlanLen:])
	}
	return 0, 0, false, false
}

// innerToken reads the token from the inner Ethernet frame of a tunnel.
func innerToken(f []byte) (runID uint64, seq uint32, reply, ok bool) {
	if len(f) < etherLen {
		return 0, 0, false, false
	}
	ip := f[etherLen:]
	switch binary.BigEndian.Uint16(f[12:14]) {
	case etherTypeIPv4:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != protoICMP {
			return 0, 0, false, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || len(ip) < ihl {
			return 0, 0, false, false
		}
		return echoToken(ip[ihl:], 8, 0)
	case etherTypeIPv6:
		if len(ip) < ipv6Len || ip[0]>>4 != 6 || ip[6] != protoICMPv6 {
			return 0, 0, false, false
		}
		return echoToken(ip[ipv6Len:], 128, 129)
	}
	return 0, 0, false, false
}

// echoToken reads the token of an ICMP echo request (type req) or reply
// (type rep) message m.
func echoToken(m []byte, req, rep byte) (runID uint64, seq uint32, reply, ok bool) {
	if len(m) < icmpLen+16 || (m[0] != req && m[0] != rep) || m[1] != 0 {
		return 0, 0, false, false
	}
	d := m[icmpLen:]
	if binary.BigEndian.Uint32(d[0:4]) != probeMagic {
		return 0, 0, false, false
	}
	return binary.BigEndian.Uint64(d[4:12]), binary.BigEndian.Uint32(d[12:16]), m[0] == rep, true
}
