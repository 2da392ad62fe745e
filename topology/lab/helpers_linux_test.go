//go:build linux

package lab_test

import (
	"encoding/hex"
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
)

// checkVXLAN checks flannel.1 of n is configured as flannel's vxlan backend
// does it, and returns it.
func checkVXLAN(t *testing.T, h *netlink.Handle, n *lab.Node) *netlink.Vxlan {
	t.Helper()
	link, err := h.LinkByName(lab.VXLANName)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", lab.VXLANName, n.Name, err)
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s in %s is a %s, want vxlan", lab.VXLANName, n.Name, link.Type())
	}
	uplink, err := h.LinkByName(lab.UplinkName)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", lab.UplinkName, n.Name, err)
	}
	if vx.VxlanId != lab.VNI || vx.Port != lab.VXLANPort || vx.Learning || vx.MTU != lab.MTU ||
		vx.VtepDevIndex != uplink.Attrs().Index || !vx.SrcAddr.Equal(n.UplinkAddr.AsSlice()) {
		t.Errorf("%s in %s: vni %d port %d learning %v mtu %d vtep dev %d local %s; want vni %d port %d learning false mtu %d vtep dev %d local %s",
			lab.VXLANName, n.Name, vx.VxlanId, vx.Port, vx.Learning, vx.MTU, vx.VtepDevIndex, vx.SrcAddr,
			lab.VNI, lab.VXLANPort, lab.MTU, uplink.Attrs().Index, n.UplinkAddr)
	}
	return vx
}

// checkRemote checks the route, neighbour and FDB entry toward remote on
// the VXLAN device vx.
func checkRemote(t *testing.T, h *netlink.Handle, vx int, remote *lab.Node) {
	t.Helper()
	vtep := remote.PodCIDR.Addr()
	routes, err := h.RouteGet(remote.Pod.Addr.AsSlice())
	if err != nil || len(routes) != 1 {
		t.Fatalf("route get %s: %v %v", remote.Pod.Addr, routes, err)
	}
	if r := routes[0]; r.LinkIndex != vx || !r.Gw.Equal(vtep.AsSlice()) {
		t.Errorf("route to %s: dev %d via %s, want dev %d via %s", remote.Pod.Addr, r.LinkIndex, r.Gw, vx, vtep)
	}
	neighs, err := h.NeighList(vx, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	mac := findNeigh(neighs, func(n netlink.Neigh) bool { return n.IP.Equal(vtep.AsSlice()) })
	if mac == nil || mac.HardwareAddr.String() != "0e:00:00:00:00:0"+strconv.Itoa(nodeNum(remote)) || mac.State != netlink.NUD_PERMANENT {
		t.Errorf("neighbour %s on %s = %+v, want permanent 0e:00:00:00:00:0%d", vtep, lab.VXLANName, mac, nodeNum(remote))
	}
	fdbs, err := h.NeighList(vx, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	fdb := findNeigh(fdbs, func(n netlink.Neigh) bool { return mac != nil && n.HardwareAddr.String() == mac.HardwareAddr.String() })
	if fdb == nil || !fdb.IP.Equal(remote.UplinkAddr.AsSlice()) {
		t.Errorf("fdb entry for the remote VTEP on %s = %+v, want dst %s", lab.VXLANName, fdb, remote.UplinkAddr)
	}
}

func ping(t *testing.T, l *lab.Lab, from string, to netip.Addr) {
	t.Helper()
	out, err := l.Command(t.Context(), from, "ping", "-c", "3", "-W", "1", "-i", "0.2", to.String()).CombinedOutput()
	if err != nil {
		t.Errorf("ping %s from %s: %v\n%s", to, from, err, out)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("ping %s from %s: %s", to, filepath.Base(from), lines[len(lines)-1])
}

func handle(t *testing.T, ns *topology.NetNS) *netlink.Handle {
	t.Helper()
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func linkStats(t *testing.T, h *netlink.Handle, name string) *netlink.LinkStatistics {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Statistics
}

func findNeigh(neighs []netlink.Neigh, match func(netlink.Neigh) bool) *netlink.Neigh {
	for i := range neighs {
		if match(neighs[i]) {
			return &neighs[i]
		}
	}
	return nil
}

func nodeNum(n *lab.Node) int { return int(n.PodCIDR.Addr().As4()[2]) }

// uniqueName returns prefix + 6 random hex digits.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := unix.Getrandom(b, 0); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// rootState describes the test's own netns: its links and ip_forward.
func rootState(t *testing.T) ([]string, string) {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name+"#"+strconv.Itoa(l.Attrs().Index))
	}
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	return names, string(forward)
}

// openFDTo returns an fd of this process that refers to target, if any.
func openFDTo(t *testing.T, target string) string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if dst, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && dst == target {
			return fd.Name()
		}
	}
	return ""
}
