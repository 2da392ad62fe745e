//go:build linux

package main

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// broadcastOf returns the broadcast address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// TestPrivilegedTargetsThatAreNoPeer: the pod's own addresses and its
// subnet's broadcast address are usage errors that say why, found before
// the warm-up probe: nothing is sent to them.
func TestPrivilegedTargetsThatAreNoPeer(t *testing.T) {
	l := labtest.New(t)
	n1 := l.Nodes[0]
	tests := []struct{ target, want string }{
		{n1.Pod.Addr.String(), "an address of " + n1.Pod.NS.ID()},
		{n1.Pod.Addr6.String(), "an address of " + n1.Pod.NS.ID()},
		{broadcastOf(n1.PodCIDR).String(), "a broadcast address in " + n1.Pod.NS.ID()},
	}
	for _, tc := range tests {
		for _, cmd := range []string{"trace", "path"} {
			t.Run(cmd+" "+tc.target, func(t *testing.T) {
				before := echoRequestsSent(t, n1.Pod.NS)
				code, stdout, stderr := runCLI(t, cmd, "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", tc.target)
				if code != cli.ExitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 {
					t.Errorf("got exit %d, stdout %q, stderr %q; want exit 2 and one error line", code, stdout, stderr)
				}
				if want := "--to " + tc.target + ": " + tc.want; !strings.Contains(stderr, want) {
					t.Errorf("got %q, want it to say %q", stderr, want)
				}
				if sent := echoRequestsSent(t, n1.Pod.NS) - before; sent != 0 {
					t.Errorf("%d echo requests sent to %s, want none", sent, tc.target)
				}
			})
		}
	}
}

// setSysctl writes value to /proc/sys/name in ns (opened there: /proc/sys/net
// is per netns of the opening thread).
func setSysctl(t *testing.T, ns *topology.NetNS, name, value string) {
	t.Helper()
	f, err := topology.Open(ns, func() (*os.File, error) { return os.OpenFile("/proc/sys/"+name, os.O_WRONLY, 0) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(value + "\n"); err != nil {
		t.Fatalf("set %s=%s in %s: %v", name, value, ns, err)
	}
}

// TestPrivilegedForwardingOff: with forwarding off in the node netns, for
// IPv4 and for IPv6 (where the kernel still answers the route lookup),
// discovery says which sysctl is 0 and the hint points at it.
func TestPrivilegedForwardingOff(t *testing.T) {
	l := labtest.New(t)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	tests := []struct {
		sysctl, target, want string
	}{
		{"net/ipv4/ip_forward", n2.Pod.Addr.String(), "net.ipv4.ip_forward = 0"},
		{"net/ipv6/conf/all/forwarding", n2.Pod.Addr6.String(), "net.ipv6.conf.all.forwarding = 0"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			setSysctl(t, n1.NS, tc.sysctl, "0")
			defer setSysctl(t, n1.NS, tc.sysctl, "1")
			code, _, stderr := runCLI(t, "path", "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", tc.target)
			if code != cli.ExitFailure || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "\nhint: ") {
				t.Errorf("got exit %d, stderr %q; want exit 1 saying %s, with a hint", code, stderr, tc.want)
			}
		})
	}
}

// TestPrivilegedNoRouteIsNotForwarding: a node that forwards but has no
// route to the target (an unreachable route here) says so as the kernel
// answered, without blaming ip_forward.
func TestPrivilegedNoRouteIsNotForwarding(t *testing.T) {
	l := labtest.New(t)
	n1 := l.Nodes[0]
	nl, err := topology.NetlinkHandle(n1.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	_, dst, _ := net.ParseCIDR("10.99.0.0/16")
	if err := nl.RouteAdd(&netlink.Route{Dst: dst, Type: unix.RTN_UNREACHABLE}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "path", "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", "10.99.0.1")
	if code != cli.ExitFailure || !strings.Contains(stderr, "no route to host") {
		t.Errorf("got exit %d, stderr %q; want exit 1 with the kernel's no route to host", code, stderr)
	}
	if strings.Contains(stderr, "ip_forward") || strings.Contains(stderr, "hint:") {
		t.Errorf("got %q, want no word of ip_forward and no hint: forwarding is on", stderr)
	}
}
