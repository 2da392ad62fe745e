//go:build linux

package probe

import (
	"net/netip"
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedProbeAllocs is TestProbeAllocs for what needs a raw socket
// or a closed port: ICMP and ICMPv6 echo, TCP SYNs answered by a RST, UDP
// answered by an ICMP port unreachable from the error queue, IPv4 and
// IPv6, each probing loopback in a throw-away netns. None allocates.
func TestPrivilegedProbeAllocs(t *testing.T) {
	ns := labtest.NetNS(t, "probe-allocs")
	h := netlinkHandle(t, ns)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"ICMP", Config{Target: v4, Size: 56}},
		{"ICMPv6", Config{Target: v6, Size: 56}},
		{"TCP RST", Config{Target: v4, Proto: TCP, Port: 9, Size: 56}},
		{"TCP (IPv6) RST", Config{Target: v6, Proto: TCP, Port: 9, Size: 56}},
		{"UDP port unreachable", Config{Target: v4, Proto: UDP, Port: 9, Size: 56}},
		{"UDP (IPv6) port unreachable", Config{Target: v6, Proto: UDP, Port: 9, Size: 56}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := allocsRun(tc.cfg)
			conn, err := Open(ns, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if n := probeAllocs(t, conn, cfg); n != 0 {
				t.Errorf("a probe allocates %v times, want 0", n)
			}
		})
	}
}
