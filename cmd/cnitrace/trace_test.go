package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// TestCaptureRate: what trace tells the capture it sends, per point: the
// interval (at least probe.MinInterval; a second for a run of one probe),
// the packets a probe makes times the sources, and the largest frame a
// probe makes (an ICMP error quoting it included).
func TestCaptureRate(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.244.2.2"), netip.MustParseAddr("fd00:10:244:2::2")
	for _, tc := range []struct {
		name    string
		c       traceConfig
		sources int
		want    capture.Rate
	}{
		{"ICMP at 10 ms", traceConfig{to: v4, size: 56, interval: 10 * time.Millisecond, count: 300}, 1, capture.Rate{Interval: 10 * time.Millisecond, Packets: 2, Frame: 14 + 20 + 8 + 56}},
		{"ICMPv6 with a baseline", traceConfig{to: v6, size: 56, interval: time.Millisecond, count: 300}, 2, capture.Rate{Interval: time.Millisecond, Packets: 4, Frame: 14 + 40 + 8 + 56}},
		{"below the bound", traceConfig{to: v4, size: 56, interval: time.Microsecond, count: 300}, 1, capture.Rate{Interval: probe.MinInterval, Packets: 2, Frame: 14 + 20 + 8 + 56}},
		{"one probe", traceConfig{to: v4, size: 56, interval: 0, count: 1}, 1, capture.Rate{Interval: time.Second, Packets: 2, Frame: 14 + 20 + 8 + 56}},
		{"TCP", traceConfig{to: v4, proto: probe.TCP, port: 80, size: 56, interval: 10 * time.Millisecond, count: 10}, 1, capture.Rate{Interval: 10 * time.Millisecond, Packets: 3, Frame: 14 + 20 + 8 + 20 + 60}},
		{"UDP", traceConfig{to: v4, proto: probe.UDP, port: 9, size: 100, interval: 10 * time.Millisecond, count: 10}, 1, capture.Rate{Interval: 10 * time.Millisecond, Packets: 2, Frame: 14 + 20 + 8 + 20 + 8 + 100}},
		{"DNS", traceConfig{to: v4, proto: probe.UDP, port: 53, size: 56, interval: 10 * time.Millisecond, count: 10}, 1, capture.Rate{Interval: 10 * time.Millisecond, Packets: 2, Frame: 14 + 20 + 8 + 512}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := captureRate(&tc.c, tc.sources); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
