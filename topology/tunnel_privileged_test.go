//go:build linux

package topology_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedDiscoverTunnels adds a Geneve device and IPIP tunnels to
// node 1 of a lab, each with a route to a prefix of its own, and checks
// Discover finds each by kind, with its underlay. Kernels built without
// Geneve or IPIP (this project's CI machine lacks both) refuse to create the
// device: that case is skipped with the kernel's answer; the capture side
// is proven on hand-built frames (capture/handbuilt_test.go).
func TestPrivilegedDiscoverTunnels(t *testing.T) {
	remote := net.IPv4(192, 168, 255, 2) // node 2's uplink
	tests := []struct {
		name   string
		link   netlink.Link
		route  func(index int) *netlink.Route
		target string
		kind   topology.Kind
		port   int
	}{
		{"geneve", &netlink.Geneve{LinkAttrs: netlink.LinkAttrs{Name: "gn0"}, ID: 7, Remote: remote, Dport: 6081},
			func(i int) *netlink.Route { return &netlink.Route{LinkIndex: i, Dst: cidr("10.250.0.0/24")} },
			"10.250.0.1", topology.KindGeneve, 6081},
		{"ipip with a remote", &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "ipip0"}, Remote: remote, Local: net.IPv4(192, 168, 255, 1)},
			func(i int) *netlink.Route { return &netlink.Route{LinkIndex: i, Dst: cidr("10.251.0.0/24")} },
			"10.251.0.1", topology.KindIPIP, 0},
		// Calico's IPIP: one tunnel without a remote, a route per node
		// via its address, onlink.
		{"ipip via an onlink gateway", &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "ipip1"}},
			func(i int) *netlink.Route {
				return &netlink.Route{LinkIndex: i, Dst: cidr("10.252.0.0/24"), Gw: remote, Flags: int(netlink.FLAG_ONLINK)}
			},
			"10.252.0.1", topology.KindIPIP, 0},
	}
	l := labtest.New(t)
	n1 := l.Nodes[0]
	h, err := topology.NetlinkHandle(n1.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.LinkAdd(tt.link); err != nil {
				if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
					t.Skipf("skipping: this kernel has no %s devices (%v): the filter and decoder are proven on hand-built frames", tt.link.Type(), err)
				}
				t.Fatalf("create %s %s in %s: %v", tt.link.Type(), tt.link.Attrs().Name, n1.Name, err)
			}
			link, err := h.LinkByName(tt.link.Attrs().Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetUp(link); err != nil {
				t.Fatal(err)
			}
			if err := h.RouteAdd(tt.route(link.Attrs().Index)); err != nil {
				t.Fatalf("add route via %s: %v", link.Attrs().Name, err)
			}
			path, err := topology.Discover(n1.Pod.NS, n1.NS, netip.MustParseAddr(tt.target))
			if err != nil {
				t.Fatal(err)
			}
			var kinds []topology.Kind
			for _, p := range path.Points {
				kinds = append(kinds, p.Kind)
			}
			want := []topology.Kind{topology.KindPod, topology.KindVeth, topology.KindBridge, tt.kind, topology.KindUplink}
			if !slices.Equal(kinds, want) {
				t.Fatalf("kinds %v, want %v", kinds, want)
			}
			if tun, up := path.Points[3], path.Points[4]; tun.Interface != tt.link.Attrs().Name || tun.TunnelPort != tt.port || up.Interface != lab.UplinkName {
				t.Errorf("tunnel point %+v, uplink %+v; want %s (port %d) over %s", tun, up, tt.link.Attrs().Name, tt.port, lab.UplinkName)
			}
		})
	}
}

func cidr(s string) *net.IPNet {
	_, n, _ := net.ParseCIDR(s)
	return n
}
