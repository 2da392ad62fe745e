package topology

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CheckPeer asks the kernel of src how it would send a packet to target
// and returns a *NotPeerError when the answer is not one other host:
// target is an address of src itself, or a broadcast (the subnet's of
// one of its interfaces, or 255.255.255.255) or multicast address there.
// A target src has no route to is no error here: Discover reports that
// with its context.
//
// PathFinder.CheckPeer is the same check with the finder's handle.
func CheckPeer(src *NetNS, target netip.Addr) error {
	nl, err := NetlinkHandle(src, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer nl.Close()
	routes, err := nl.RouteGet(target.AsSlice())
	return checkRoutes(src, target, routes, err)
}

// checkRoutes is CheckPeer's verdict on src's route lookup of target,
// routes and err.
func checkRoutes(src *NetNS, target netip.Addr, routes []netlink.Route, err error) error {
	if err != nil || len(routes) == 0 {
		return nil
	}
	if what := routeTypeNotPeer(routes[0].Type); what != "" {
		return &NotPeerError{Target: target, NetNS: src.ID(), What: what}
	}
	return nil
}

// routeTypeNotPeer says what an address whose route has type t is, when
// that makes it no peer: "" for unicast and everything else.
func routeTypeNotPeer(t int) string {
	switch t {
	case unix.RTN_LOCAL:
		return "an address of"
	case unix.RTN_ANYCAST:
		return "an anycast address of"
	case unix.RTN_BROADCAST:
		return "a broadcast address in"
	case unix.RTN_MULTICAST:
		return "a multicast address in"
	}
	return ""
}

// forwardingOff returns the sysctl that keeps ns from forwarding packets
// of target's family that enter by iif, as name = value, or "" when
// forwarding is on. IPv4 forwards by the entry device's
// net.ipv4.conf.IIF.forwarding (net.ipv4.ip_forward sets them all); IPv6
// by net.ipv6.conf.all.forwarding. A sysctl that cannot be read (no /proc
// in a container, say) blames nothing.
func forwardingOff(ns *NetNS, target netip.Addr, iif string) string {
	var sysctls []string
	if target.Is4() {
		sysctls = []string{"net/ipv4/ip_forward", "net/ipv4/conf/" + iif + "/forwarding"}
	} else {
		sysctls = []string{"net/ipv6/conf/all/forwarding"}
	}
	values := readSysctls(ns, sysctls)
	for i, s := range sysctls {
		if values[i] == "0" {
			return sysctlName(s) + " = 0"
		}
	}
	return ""
}

// readSysctls reads /proc/sys/NAME for each of names as ns sees them,
// "" for one that cannot be read. The files under /proc/sys/net belong to
// the network namespace of the thread that opens them, so they are opened
// inside ns, all on one visit, and read outside, as any file created
// there.
func readSysctls(ns *NetNS, names []string) []string {
	files := make([]*os.File, len(names))
	_ = ns.Do(func() error { // a failed switch leaves every file nil: nothing read, nothing blamed
		for i, name := range names {
			files[i], _ = os.Open("/proc/sys/" + name)
		}
		return nil
	})
	values := make([]string, len(names))
	for i, f := range files {
		if f == nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(f, 64))
		f.Close()
		if err == nil {
			values[i] = string(bytes.TrimSpace(b))
		}
	}
	return values
}

// sysctlName spells a /proc/sys path as sysctl(8) does: dots between the
// parts, and a dot inside one (an interface such as flannel.1) as a slash.
func sysctlName(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}

// forwarded checks that the node's route r for the probes, entering from
// the pod, leads to one peer: a broadcast or multicast route sends them to
// no single one (a *NotPeerError). A local or anycast route is a peer: the
// node itself (see local).
func (d *discovery) forwarded(r netlink.Route) error {
	if what := routeTypeNotPeer(r.Type); what != "" && !local(r) {
		return &NotPeerError{Target: d.target, NetNS: d.node.ID(), What: what}
	}
	return nil
}
