package main

import (
	"encoding/binary"
	"math"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/cnitrace/cnitrace/probe"
)

func TestFastFairRatio(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		cnitrace, tcpdumps     float64 // CPU-s
		n                      int
		bareNS, tappedNS, want float64
	}{
		// 0.22 - 1000 x 60 us = 0.16 over 2 x (0.05 + 1000 x 15 us) = 0.13
		{"taps cost the sender", 0.22, 0.05, 1000, 60_000, 75_000, 0.16 / 0.13},
		// no capture, no round trip: the as-billed ratio, 0.22 / 0.1
		{"nothing to subtract", 0.22, 0.05, 1000, 0, 0, 2.2},
		// the taps cannot make the sender faster: noise counts as 0
		{"negative tap cost", 0.22, 0.05, 1000, 60_000, 55_000, 0.16 / 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fastFairRatio(tc.cnitrace, tc.tcpdumps, tc.n, tc.bareNS, tc.tappedNS); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %.6f, want %.6f", got, tc.want)
			}
		})
	}
}

// TestProberPacket checks the prober's echo request against x/net/icmp's
// and that the tcpdumps' filter (icmp[8+pingPatternAt:4] = magic) selects
// it, as it selects ping -p's.
func TestProberPacket(t *testing.T) {
	b := proberPacket(0x1234, proberSize, probe.Magic)
	setSeq(b, 777)
	data := b[icmpHeaderLen:]
	want, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x1234, Seq: 777, Data: data}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Errorf("got  % x\nwant % x", b, want)
	}
	if len(data) != proberSize {
		t.Errorf("got %d bytes of data, want %d", len(data), proberSize)
	}
	if got := binary.BigEndian.Uint32(b[icmpHeaderLen+pingPatternAt:]); got != probe.Magic {
		t.Errorf("icmp[%d:4] = %#x, want the magic %#x", icmpHeaderLen+pingPatternAt, got, probe.Magic)
	}
	if _, err := probe.ParsePayload(data); err == nil {
		t.Errorf("cnitrace would read the prober's packet as one of its probes")
	}
	setSeq(b, 778) // a checksum written over an old one
	if icmpChecksum(b) != 0 {
		t.Errorf("checksum over the packet is %#x, want 0", icmpChecksum(b))
	}
}

func TestEchoReplySeq(t *testing.T) {
	ip := func(icmp []byte) []byte {
		h := make([]byte, ipv4HeaderLen, ipv4HeaderLen+len(icmp))
		h[0] = 0x45
		return append(h, icmp...)
	}
	reply := proberPacket(7, proberSize, probe.Magic)
	reply[0] = 0
	setSeq(reply, 42)
	request := proberPacket(7, proberSize, probe.Magic)
	setSeq(request, 42)
	for _, tc := range []struct {
		name string
		b    []byte
		id   uint16
		seq  uint16
		ok   bool
	}{
		{"reply", ip(reply), 7, 42, true},
		{"another id", ip(reply), 8, 0, false},
		{"a request", ip(request), 7, 0, false},
		{"short", ip(reply)[:ipv4HeaderLen+4], 7, 0, false},
		{"bad header length", append([]byte{0x41}, ip(reply)[1:]...), 7, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if seq, ok := echoReplySeq(tc.b, tc.id); seq != tc.seq || ok != tc.ok {
				t.Errorf("got %d, %v; want %d, %v", seq, ok, tc.seq, tc.ok)
			}
		})
	}
}
