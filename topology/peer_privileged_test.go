//go:build linux

package topology_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedCheckPeer: the pod's own addresses and its subnet's
// broadcast are no peers, as the pod's kernel routes them; a pod on the
// other node is.
func TestPrivilegedCheckPeer(t *testing.T) {
	l := labtest.New(t)
	pod := l.Nodes[0].Pod
	for _, tc := range []struct {
		target string
		what   string // "" means a peer
	}{
		{pod.Addr.String(), "an address of"},
		{pod.Addr6.String(), "an address of"},
		{"10.244.1.255", "a broadcast address in"},
		{l.Nodes[1].Pod.Addr.String(), ""},
		{l.Nodes[1].Pod.Addr6.String(), ""},
	} {
		err := topology.CheckPeer(pod.NS, netip.MustParseAddr(tc.target))
		var np *topology.NotPeerError
		switch {
		case tc.what == "" && err != nil:
			t.Errorf("CheckPeer(%s) = %v, want nil", tc.target, err)
		case tc.what != "" && (!errors.As(err, &np) || np.What != tc.what || np.NetNS != pod.NS.ID()):
			t.Errorf("CheckPeer(%s) = %v, want a *NotPeerError: %s %s", tc.target, err, tc.what, pod.NS.ID())
		}
	}
}

// TestPrivilegedDiscoverForwarding: ErrNoForwardRoute means forwarding is
// off in the node netns, and nothing else: a route lookup the node fails
// with forwarding on (an unreachable route) is another error, and a target
// the node delivers to itself needs no forwarding at all (see
// TestPrivilegedDiscoverNodeLocal).
func TestPrivilegedDiscoverForwarding(t *testing.T) {
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
	discover := func(target string) error {
		_, err := topology.Discover(n1.Pod.NS, n1.NS, netip.MustParseAddr(target))
		return err
	}
	if err := discover("10.99.0.1"); err == nil || errors.Is(err, topology.ErrNoForwardRoute) {
		t.Errorf("unreachable route: got %v, want an error other than ErrNoForwardRoute", err)
	}
	f, err := topology.Open(n1.NS, func() (*os.File, error) { return os.OpenFile("/proc/sys/net/ipv4/ip_forward", os.O_WRONLY, 0) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("0\n"); err != nil {
		t.Fatal(err)
	}
	if err := discover(l.Nodes[1].Pod.Addr.String()); !errors.Is(err, topology.ErrNoForwardRoute) {
		t.Errorf("ip_forward off: got %v, want ErrNoForwardRoute", err)
	}
	if err := discover(n1.UplinkAddr.String()); err != nil {
		t.Errorf("the node's own address with ip_forward off: got %v, want its path: the node forwards nothing to answer", err)
	}
}
