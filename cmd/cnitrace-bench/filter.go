package main

import (
	"fmt"
	"regexp"
	"strconv"
)

// Header lengths on the lab's path: the inner frame of flannel's VXLAN is
// Ethernet, IPv4 without options (the probes set none), ICMP echo.
const (
	udpHeaderLen   = 8
	vxlanHeaderLen = 8
	etherHeaderLen = 14
	ipv4HeaderLen  = 20
	icmpHeaderLen  = 8
)

// vxlanPayloadOffset is where the inner ICMP echo's data starts, counted
// from the start of the outer UDP header as tcpdump's udp[] counts:
// UDP 8 + VXLAN 8 + inner Ethernet 14 + inner IPv4 20 + ICMP 8 = 58.
// (udp[50:4] is the inner ICMP header, which no magic is in.)
const vxlanPayloadOffset = udpHeaderLen + vxlanHeaderLen + etherHeaderLen + ipv4HeaderLen + icmpHeaderLen

// tcpdumpFilter is the filter of a tcpdump that keeps what cnitrace's
// rings keep: ICMP whose echo data holds magic at byte at of the data, plain
// or inside VXLAN on vxlanPort. cnitrace's probes carry the magic at 0;
// ping -p with a 4-byte pattern carries it at 16, after its timeval.
func tcpdumpFilter(magic uint32, at, vxlanPort int) string {
	return fmt.Sprintf("icmp[%d:4] = 0x%08x or (udp dst port %d and udp[%d:4] = 0x%08x)",
		icmpHeaderLen+at, magic, vxlanPort, vxlanPayloadOffset+at, magic)
}

// pingPatternAt is where ping -p puts its pattern in the echo data: after
// the struct timeval it sends (16 bytes on 64-bit Linux), which it writes
// over the start of the pattern.
const pingPatternAt = 16

var tcpdumpCount = regexp.MustCompile(`(?m)^(\d+) packets? (captured|received by filter|dropped by kernel)`)

// tcpdumpCounts are the counts tcpdump prints on stderr when it stops.
type tcpdumpCounts struct {
	Captured uint64 `json:"captured"`
	Received uint64 `json:"received_by_filter"`
	Dropped  uint64 `json:"dropped_by_kernel"`
}

// parseTcpdumpCounts reads them; ok is false when there is no "captured"
// line (tcpdump did not stop cleanly).
func parseTcpdumpCounts(stderr string) (c tcpdumpCounts, ok bool) {
	for _, m := range tcpdumpCount.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		switch m[2] {
		case "captured":
			c.Captured, ok = n, true
		case "received by filter":
			c.Received = n
		case "dropped by kernel":
			c.Dropped = n
		}
	}
	return c, ok
}
