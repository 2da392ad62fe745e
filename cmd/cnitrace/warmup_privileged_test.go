package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedWarmUpSourcePort: the warm-up of a TCP or UDP run says
// which source port its probe left from, and node 1's conntrack holds the
// DNAT of the Service under that port: the entry discovery looks up
// instead of dumping the table. An ICMP warm-up has no port.
func TestPrivilegedWarmUpSourcePort(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Service: true})
	n1 := l.Nodes[0]
	for _, tc := range []struct {
		name  string
		proto probe.Proto
		port  int
		num   uint8
	}{
		{"tcp", probe.TCP, 80, unix.IPPROTO_TCP},
		{"udp", probe.UDP, 53, unix.IPPROTO_UDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &traceConfig{to: l.Service, proto: tc.proto, port: tc.port, size: 56, interval: 10 * time.Millisecond, count: 1, timeout: time.Second}
			sport, err := c.warmUp(n1.Pod.NS)
			if err != nil {
				t.Fatal(err)
			}
			if sport == 0 {
				t.Fatalf("warm-up to %s port %d returned no source port", l.Service, tc.port)
			}
			var found bool
			for _, f := range nodeFlows(t, n1.NS) {
				dst, _ := netip.AddrFromSlice(f.Forward.DstIP)
				if f.Forward.Protocol == tc.num && dst.Unmap() == l.Service && f.Forward.DstPort == uint16(tc.port) && f.Forward.SrcPort == sport {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s flow to %s port %d from source port %d in node 1's conntrack", tc.name, l.Service, tc.port, sport)
			}
		})
	}
	c := &traceConfig{to: l.Nodes[1].Pod.Addr, size: 56, interval: 10 * time.Millisecond, count: 1, timeout: time.Second}
	if sport, err := c.warmUp(n1.Pod.NS); err != nil || sport != 0 {
		t.Errorf("ICMP warm-up: port %d, %v; want 0 and no error", sport, err)
	}
}

// nodeFlows dumps the IPv4 conntrack table as ns sees it.
func nodeFlows(t *testing.T, ns *topology.NetNS) []*netlink.ConntrackFlow {
	t.Helper()
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := topology.RetryDump(func() ([]*netlink.ConntrackFlow, error) {
		return h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	})
	if err != nil {
		t.Fatal(err)
	}
	return flows
}
