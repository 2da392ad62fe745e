//go:build linux

package lab_test

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Both layouts are dual-stack: IPv6 pod addresses from
// fd00:10:244:<i>::/64, carried between the nodes by the same VXLAN device
// as IPv4; the routed one gives each pod a /128 and Calico's link-local
// gateway.

func TestPrivilegedIPv6Addresses(t *testing.T) {
	l := labtest.New(t)
	for _, n := range l.Nodes {
		want := map[string]netip.Addr{"Pod": n.Pod.Addr6, "Sibling": n.Sibling.Addr6}
		for role, p := range map[string]*lab.Pod{"Pod": n.Pod, "Sibling": n.Sibling} {
			if !want[role].IsValid() || !n.PodCIDR6.Contains(want[role]) {
				t.Errorf("%s of %s has IPv6 address %s, want one in %s", role, n.Name, want[role], n.PodCIDR6)
			}
			h := handle(t, p.NS)
			checkAddr6(t, h, p.Name, lab.PodIfName, netip.PrefixFrom(p.Addr6, 64))
			checkDefault6(t, h, p.Name, hostAddr(n.PodCIDR6, 1))
		}
		h := handle(t, n.NS)
		checkNoneTentative(t, h, n.Name)
		checkNoneTentative(t, handle(t, n.Pod.NS), n.Pod.Name)
		checkNoneTentative(t, handle(t, n.Sibling.NS), n.Sibling.Name)
		checkAddr6(t, h, n.Name, lab.BridgeName, netip.PrefixFrom(hostAddr(n.PodCIDR6, 1), 64))
		checkAddr6(t, h, n.Name, lab.VXLANName, netip.PrefixFrom(n.PodCIDR6.Addr(), 128))
		if got := sysctl(t, n.NS, "/proc/sys/net/ipv6/conf/all/forwarding"); got != "1" {
			t.Errorf("IPv6 forwarding in %s is %q, want 1", n.Name, got)
		}
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	checkRemote6(t, handle(t, n1.NS), lab.VXLANName, n2)
	checkRemote6(t, handle(t, n2.NS), lab.VXLANName, n1)
}

// TestPrivilegedRoutedIPv6Addresses checks Calico's IPv6 scheme on the
// routed lab: each pod's address is a /128 with the default route via
// fe80::ecee:eeff:feee:eeee, the link-local address every host veth has
// from its MAC ee:ee:ee:ee:ee:ee (usable when Up returns), and the node
// routes each pod's /128 through its veth.
func TestPrivilegedRoutedIPv6Addresses(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted})
	for _, n := range l.Nodes {
		h := handle(t, n.NS)
		for _, p := range []*lab.Pod{n.Pod, n.Sibling} {
			if !p.Addr6.IsValid() || !n.PodCIDR6.Contains(p.Addr6) {
				t.Errorf("%s has IPv6 address %s, want one in %s", p.Name, p.Addr6, n.PodCIDR6)
			}
			ph := handle(t, p.NS)
			checkAddr6(t, ph, p.Name, lab.PodIfName, netip.PrefixFrom(p.Addr6, 128))
			checkDefault6(t, ph, p.Name, lab.RoutedGateway6)
			checkNoneTentative(t, ph, p.Name)
			checkRoutedVeth6(t, h, n.Name, p)
		}
		checkNoneTentative(t, h, n.Name)
		checkAddr6(t, h, n.Name, lab.RoutedVXLANName, netip.PrefixFrom(n.PodCIDR6.Addr(), 128))
		if got := sysctl(t, n.NS, "/proc/sys/net/ipv6/conf/all/forwarding"); got != "1" {
			t.Errorf("IPv6 forwarding in %s is %q, want 1", n.Name, got)
		}
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	checkRemote6(t, handle(t, n1.NS), lab.RoutedVXLANName, n2)
	checkRemote6(t, handle(t, n2.NS), lab.RoutedVXLANName, n1)
}

// checkRoutedVeth6 checks p's host veth in the node netns ns: Calico's MAC,
// the gateway link-local address, usable, and the node's route to p's /128
// through it. Both host veths of a node have the same MAC and link-local
// address, which is fine: they are different links.
func checkRoutedVeth6(t *testing.T, h *netlink.Handle, ns string, p *lab.Pod) {
	t.Helper()
	veth, err := h.LinkByName(p.HostVeth)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", p.HostVeth, ns, err)
	}
	if got := veth.Attrs().HardwareAddr.String(); got != lab.RoutedVethMAC.String() {
		t.Errorf("%s in %s has MAC %s, want %s", p.HostVeth, ns, got, lab.RoutedVethMAC)
	}
	checkAddr6(t, h, ns, p.HostVeth, netip.PrefixFrom(lab.RoutedGateway6, 64))
	routes, err := h.RouteGet(p.Addr6.AsSlice())
	if err != nil || len(routes) != 1 || routes[0].LinkIndex != veth.Attrs().Index || routes[0].Gw != nil {
		t.Errorf("route from %s to %s: %+v %v, want dev %s", ns, p.Addr6, routes, err, p.HostVeth)
	}
}

// TestPrivilegedIPv6Ping pings over IPv6 at once after Up, on each
// layout: across the nodes both ways and to the sibling on the same node.
// The very first echo must be answered: the lab is ready for IPv6 when Up
// returns.
func TestPrivilegedIPv6Ping(t *testing.T) {
	for _, topo := range lab.Layouts {
		t.Run(string(topo), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: topo})
			n1, n2 := l.Nodes[0], l.Nodes[1]
			ping6(t, l, n1.Pod.NSPath, n2.Pod.Addr6, "1")
			ping6(t, l, n2.Pod.NSPath, n1.Pod.Addr6, "1")
			ping6(t, l, n1.Pod.NSPath, n1.Sibling.Addr6, "1")
			ping6(t, l, n2.Sibling.NSPath, n1.Pod.Addr6, "1")
			ping6(t, l, n1.Pod.NSPath, n2.Pod.Addr6, "3")
		})
	}
}

func TestPrivilegedIPv6Open(t *testing.T) {
	for _, topo := range lab.Layouts {
		t.Run(string(topo), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: topo})
			o, err := lab.Open(l.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			for i, n := range o.Nodes {
				built := l.Nodes[i]
				if n.PodCIDR6 != built.PodCIDR6 || n.Pod.Addr6 != built.Pod.Addr6 || n.Sibling.Addr6 != built.Sibling.Addr6 {
					t.Errorf("Open node %d: %s %s %s, Up built %s %s %s", i+1,
						n.PodCIDR6, n.Pod.Addr6, n.Sibling.Addr6, built.PodCIDR6, built.Pod.Addr6, built.Sibling.Addr6)
				}
				if !n.Pod.Addr6.IsValid() || !n.PodCIDR6.IsValid() {
					t.Errorf("node %d of a %s lab: IPv6 pod prefix %s, address %s; want both layouts dual-stack", i+1, topo, n.PodCIDR6, n.Pod.Addr6)
				}
			}
		})
	}
}

// checkAddr6 checks that link in ns has the IPv6 address p, usable
// (neither tentative nor failed duplicate address detection).
func checkAddr6(t *testing.T, h *netlink.Handle, ns, link string, p netip.Prefix) {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", link, ns, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IPNet.String() != p.String() {
			continue
		}
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			t.Errorf("%s on %s in %s has flags %#x: tentative or DAD failed", p, link, ns, a.Flags)
		}
		return
	}
	t.Errorf("%s in %s has no address %s: %v", link, ns, p, addrs)
}

// checkNoneTentative checks that no IPv6 address in the namespace is
// tentative right after Up, the kernel's link-local ones included: while a
// device's link-local address is, the kernel sends no neighbour
// solicitation of its own (discovery's NTF_USE) on it.
func checkNoneTentative(t *testing.T, h *netlink.Handle, ns string) {
	t.Helper()
	addrs, err := h.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_TENTATIVE != 0 {
			t.Errorf("%s in %s is tentative right after Up", a.IPNet, ns)
		}
	}
}

// checkDefault6 checks the IPv6 default route of a pod goes via gw.
func checkDefault6(t *testing.T, h *netlink.Handle, ns string, gw netip.Addr) {
	t.Helper()
	routes, err := h.RouteGet(net.ParseIP("fd00:ffff::1"))
	if err != nil || len(routes) != 1 || !routes[0].Gw.Equal(gw.AsSlice()) {
		t.Errorf("IPv6 route from %s to elsewhere: %+v %v, want via %s", ns, routes, err, gw)
	}
}

// checkRemote6 checks the IPv6 route to remote's pods and the neighbour
// entry of its VTEP on the VXLAN device vxName; the FDB entry is
// checkRemote's, shared by both families.
func checkRemote6(t *testing.T, h *netlink.Handle, vxName string, remote *lab.Node) {
	t.Helper()
	vtep := remote.PodCIDR6.Addr()
	routes, err := h.RouteGet(remote.Pod.Addr6.AsSlice())
	if err != nil || len(routes) != 1 {
		t.Fatalf("route get %s: %v %v", remote.Pod.Addr6, routes, err)
	}
	vx, err := h.LinkByName(vxName)
	if err != nil {
		t.Fatal(err)
	}
	if r := routes[0]; r.LinkIndex != vx.Attrs().Index || !r.Gw.Equal(vtep.AsSlice()) {
		t.Errorf("route to %s: dev %d via %s, want dev %s via %s", remote.Pod.Addr6, r.LinkIndex, r.Gw, vxName, vtep)
	}
	neighs, err := h.NeighList(vx.Attrs().Index, unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	n := findNeigh(neighs, func(n netlink.Neigh) bool { return n.IP.Equal(vtep.AsSlice()) })
	mac := "0e:00:00:00:00:0" + strconv.Itoa(nodeNum(remote))
	if n == nil || n.HardwareAddr.String() != mac || n.State != netlink.NUD_PERMANENT {
		t.Errorf("neighbour %s on %s = %+v, want permanent %s", vtep, vxName, n, mac)
	}
	checkRemote(t, h, vx.Attrs().Index, remote)
}

// ping6 pings to with count echoes from the lab namespace at from, over
// IPv6; every echo must be answered.
func ping6(t *testing.T, l *lab.Lab, from string, to netip.Addr, count string) {
	t.Helper()
	out, err := l.Command(t.Context(), from, "ping", "-6", "-c", count, "-W", "1", "-i", "0.2", to.String()).CombinedOutput()
	if err != nil {
		t.Errorf("ping -6 %s from %s: %v\n%s", to, from, err, out)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("ping -6 -c %s %s from %s: %s", count, to, filepath.Base(from), lines[len(lines)-1])
}

// hostAddr is the address host in the /64 p.
func hostAddr(p netip.Prefix, host byte) netip.Addr {
	a := p.Addr().As16()
	a[15] = host
	return netip.AddrFrom16(a)
}

// sysctl reads the file at path (under /proc/sys/net) inside ns.
func sysctl(t *testing.T, ns *topology.NetNS, path string) string {
	t.Helper()
	var b []byte
	err := ns.Do(func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
