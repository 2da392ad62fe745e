package main

import "encoding/binary"

// The 1 ms comparison's fair ratio takes the probes' own round trip out of
// both sides. In the lab the whole round trip (veth, bridge, VXLAN, the
// other node, the pod's reply and back) runs as softirq inline in the
// sender's sendto, and so does every tap's filter and ring copy: cnitrace
// pays its probes' round trip and its rings' copies of them, while the
// tcpdumps' copies of ping's packets are billed to ping, which the 1 ms
// comparison leaves out. The bench's own prober (prober.go) measures what
// one probe's round trip costs its sender with no capture and with the five
// tcpdumps capturing it.

// fastFairRatio is cnitrace's CPU less n bare round trips (its own rings'
// copies stay on its side), over twice the tcpdumps' CPU plus what their
// taps' copies of n probes cost the sender. cnitrace and tcpdumps are
// CPU-seconds, bareNS and tappedNS the prober's CPU per probe without and
// with the tcpdumps; a negative tap cost is noise and counts as 0, as for
// the flood (tapCost).
func fastFairRatio(cnitrace, tcpdumps float64, n int, bareNS, tappedNS float64) float64 {
	own := cnitrace - float64(n)*bareNS/1e9
	taps := max(0, tappedNS-bareNS) * float64(n) / 1e9
	return own / (2 * (tcpdumps + taps))
}

// proberPacket is an ICMP echo request with size bytes of data laid out as
// ping -p PATTERN lays them out: 16 bytes where ping puts its timeval (left
// zero), then magic repeated from data byte 16 (pingPatternAt), so the
// tcpdumps' filter selects its packets as it selects ping's. setSeq fills in
// the sequence number and the checksum.
func proberPacket(id uint16, size int, magic uint32) []byte {
	b := make([]byte, icmpHeaderLen+size)
	b[0] = 8 // echo request, code 0
	binary.BigEndian.PutUint16(b[4:], id)
	var pat [4]byte
	binary.BigEndian.PutUint32(pat[:], magic)
	for i := pingPatternAt; i < size; i++ {
		b[icmpHeaderLen+i] = pat[i%len(pat)]
	}
	return b
}

// setSeq writes seq and the ICMP checksum into the echo request b (a raw
// IPv4 ICMP socket sends it as given).
func setSeq(b []byte, seq uint16) {
	binary.BigEndian.PutUint16(b[6:], seq)
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], icmpChecksum(b))
}

// icmpChecksum is the Internet checksum (RFC 1071) of b.
func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// echoReplySeq reads an IPv4 packet as a raw ICMP socket returns it (IP
// header first) and returns the sequence number of an echo reply with id;
// ok is false for anything else.
func echoReplySeq(b []byte, id uint16) (seq uint16, ok bool) {
	if len(b) < ipv4HeaderLen {
		return 0, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < ipv4HeaderLen || len(b) < ihl+icmpHeaderLen {
		return 0, false
	}
	m := b[ihl:]
	if m[0] != 0 || m[1] != 0 || binary.BigEndian.Uint16(m[4:]) != id {
		return 0, false
	}
	return binary.BigEndian.Uint16(m[6:]), true
}
