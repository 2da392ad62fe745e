package topology

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Discover finds the capture points a probe from the source namespace to
// target crosses on the node, following kernel state only, never interface
// names or addresses: the pod's route to target and its interface, the
// other end of that interface on the node (a veth's peer, a macvlan's or
// ipvlan's parent: IFLA_LINK and the link netnsid), the veth's master
// bridge, the node's forwarding decision for traffic entering from there
// (RouteGet with iif), and then, by what that decision leads to: a VXLAN
// device and its underlay toward the remote VTEP, the host side of another
// pod's veth on this node (routed, or bridged on the same bridge: found
// through the neighbour and FDB tables), an uplink, or the node's own
// stack when target is one of its addresses. Path.Turnaround says which.
//
// When src is the node namespace itself (a hostNetwork pod, or the node),
// the path starts at the interface the node's own route to target leaves by.
//
// A Service's DNAT is followed for ICMP echo traffic; DiscoverFlow follows
// it for the probes' own flow.
func Discover(src, node *NetNS, target netip.Addr) (*Path, error) {
	return DiscoverFlow(src, node, target, Flow{})
}

// DiscoverFlow is Discover for the probes of flow: the DNAT of target it
// follows is the one the node's conntrack shows for flow's protocol and
// destination port (kube-proxy translates TCP, UDP and SCTP, never ICMP).
//
// A caller that also checks the target first (CheckPeer) opens one
// PathFinder for both.
func DiscoverFlow(src, node *NetNS, target netip.Addr, flow Flow) (*Path, error) {
	f, err := OpenPathFinder(src, node)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Discover(target, flow)
}

type discovery struct {
	pod, node     *NetNS
	podNL, nodeNL *netlink.Handle
	target        netip.Addr // where probes are sent
	flow          Flow       // what the probes are, for the DNAT conntrack shows
	dest          netip.Addr // where the node forwards them: target, or its DNAT
	points        []Point
	turn          Turnaround // what answers beyond the last point
	// lookup is how the node's forwarding decision was asked for (the
	// entry device and the pod's source address); nil from the node.
	lookup *netlink.RouteGetOptions
	// ct is the node's conntrack, opened with the handles (nil: opened
	// when read, or ctErr says why it could not be).
	ct    *Conntrack
	ctErr error
	// podRoutes is the pod's route lookup of target, when it was already
	// made (PathFinder.CheckPeer); nil: podEgress makes it.
	podRoutes []netlink.Route
}

// fromPod discovers the path of a probe sent from a pod namespace: through
// a veth into the node's stack, or through a macvlan or ipvlan straight
// onto its parent device.
func (d *discovery) fromPod() (*Path, error) {
	podLink, podRoute, src, err := d.podEgress()
	if err != nil {
		return nil, err
	}
	switch podLink.Type() {
	case "veth":
		err = d.throughVeth(podLink, src)
	case "macvlan", "ipvlan":
		err = d.throughParent(podLink, podRoute)
	default:
		err = fmt.Errorf("pod interface %s@%s is a %s, not a veth, macvlan or ipvlan: %w", podLink.Attrs().Name, d.pod, podLink.Type(), ErrUnsupportedLayout)
	}
	if err != nil {
		return nil, err
	}
	return d.path(Source{NetNS: d.pod.ID(), Interface: podLink.Attrs().Name, Addr: src}), nil
}

// throughVeth adds the points of a probe that leaves the pod by a veth:
// the pod's interface, its host side, the bridge it is enslaved to if any,
// and what the node's forwarding decision leads to.
func (d *discovery) throughVeth(podLink netlink.Link, src netip.Addr) error {
	hostVeth, err := d.nodeEnd(podLink, "veth peer")
	if err != nil {
		return err
	}
	if err := d.translate(src); err != nil {
		return err
	}
	d.add(d.pod, podLink, KindPod, TX)
	d.add(d.node, hostVeth, KindVeth, RX)
	bridge, bridged, err := d.master(hostVeth)
	if err != nil {
		return err
	}
	entry := hostVeth
	if bridged {
		entry = bridge
	}
	r, out, err := d.route(entry, src)
	if err != nil {
		return err
	}
	switch {
	case local(r):
		// The node answers itself: the request goes up its stack from the
		// device it entered by (the bridge's tap sees it going up), and
		// the reply leaves by the same device.
		if bridged {
			d.add(d.node, bridge, KindBridge, RX)
		}
		return d.turnInNode(entry, src)
	case bridged && out.Attrs().Index == bridge.Attrs().Index && d.dest == d.target:
		// The target is on the pod's own bridge: the bridge forwards the
		// frame port to port and its own tap never sees it. (A Service
		// whose backend is on that bridge hairpins through the node
		// instead: the next case refuses it.)
		return d.bridgePort(bridge, d.podNL, podLink)
	case out.Attrs().Index == entry.Attrs().Index:
		return fmt.Errorf("%s is reached back through %s@%s, where the probe entered the node: %w", d.target, out.Attrs().Name, d.node, ErrUnsupportedLayout)
	}
	if bridged {
		d.add(d.node, bridge, KindBridge, RX)
	}
	return d.egress(out, r)
}

// fromNode discovers the path of a probe sent from the node namespace
// itself: no pod interface, no veth, the node's own route.
func (d *discovery) fromNode() (*Path, error) {
	if err := d.translate(netip.Addr{}); err != nil {
		return nil, err
	}
	routes, err := d.nodeNL.RouteGet(d.dest.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, fmt.Errorf("find route to %s in node netns %s: %w", d.target, d.node, orNoRoute(err))
	}
	r := routes[0]
	out, err := d.nodeNL.LinkByIndex(r.LinkIndex)
	if err != nil {
		return nil, fmt.Errorf("read egress interface %d in %s: %w", r.LinkIndex, d.node, err)
	}
	if out.Attrs().Flags&net.FlagLoopback != 0 {
		return nil, fmt.Errorf("%s is an address of the node netns %s itself: %w", d.target, d.node, ErrUnsupportedLayout)
	}
	if err := d.egress(out, r); err != nil {
		return nil, err
	}
	src, _ := netip.AddrFromSlice(r.Src)
	return d.path(Source{NetNS: d.node.ID(), Interface: out.Attrs().Name, Addr: src.Unmap()}), nil
}

func (d *discovery) path(src Source) *Path {
	p := &Path{Target: d.target, Source: src, Points: d.points, Turnaround: d.turn}
	if d.dest != d.target {
		p.Translated = d.dest
	}
	return p
}

// translate follows a DNAT of target in the node (a Service) for traffic
// from src, so the node-side lookups go where the node sends the probes.
func (d *discovery) translate(src netip.Addr) error {
	dest, ok, err := d.dnat(src)
	if err != nil {
		return err
	}
	if ok {
		d.dest = dest
	}
	return nil
}

func (d *discovery) add(ns *NetNS, l netlink.Link, kind Kind, dir Dir) *Point {
	d.points = append(d.points, Point{
		ID:         fmt.Sprintf("p%d", len(d.points)),
		Interface:  l.Attrs().Name,
		Ifindex:    l.Attrs().Index,
		NetNS:      ns.ID(),
		Kind:       kind,
		RequestDir: dir,
	})
	return &d.points[len(d.points)-1]
}

// podEgress returns the pod interface the route to target leaves by, that
// route, and the source address the pod uses.
func (d *discovery) podEgress() (netlink.Link, netlink.Route, netip.Addr, error) {
	routes := d.podRoutes
	var err error
	if routes == nil {
		routes, err = d.podNL.RouteGet(d.target.AsSlice())
	}
	if err != nil || len(routes) == 0 {
		return nil, netlink.Route{}, netip.Addr{}, fmt.Errorf("find route to %s in pod netns %s: %w", d.target, d.pod, orNoRoute(err))
	}
	link, err := d.podNL.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return nil, netlink.Route{}, netip.Addr{}, fmt.Errorf("read pod interface %d in %s: %w", routes[0].LinkIndex, d.pod, err)
	}
	src, _ := netip.AddrFromSlice(routes[0].Src)
	return link, routes[0], src.Unmap(), nil
}

// nodeEnd follows the pod's interface to the link it is the other end of
// (what, for messages: a veth's peer, a macvlan's parent), which must be
// in the node netns: IFLA_LINK is its ifindex there, and the link netnsid
// says which namespace that is.
func (d *discovery) nodeEnd(podLink netlink.Link, what string) (netlink.Link, error) {
	a := podLink.Attrs()
	nodeID, err := d.podNL.GetNetNsIdByFd(d.node.Fd())
	if err != nil {
		return nil, fmt.Errorf("look up node netns %s from pod %s: %w", d.node, d.pod, err)
	}
	if a.NetNsID < 0 || a.NetNsID != nodeID {
		return nil, fmt.Errorf("%s of %s@%s is not in the node netns %s (its netnsid %d, node's %d): pass the node's netns with --node-netns",
			what, a.Name, d.pod, d.node, a.NetNsID, nodeID)
	}
	end, err := d.nodeNL.LinkByIndex(a.ParentIndex)
	if err != nil {
		return nil, fmt.Errorf("read %s %d of %s@%s in %s: %w", what, a.ParentIndex, a.Name, d.pod, d.node, err)
	}
	return end, nil
}

// master returns the bridge the host-side veth is enslaved to, if any.
func (d *discovery) master(veth netlink.Link) (netlink.Link, bool, error) {
	idx := veth.Attrs().MasterIndex
	if idx == 0 {
		return nil, false, nil
	}
	m, err := d.nodeNL.LinkByIndex(idx)
	if err != nil {
		return nil, false, fmt.Errorf("read master %d of %s@%s: %w", idx, veth.Attrs().Name, d.node, err)
	}
	if m.Type() != "bridge" {
		return nil, false, fmt.Errorf("%s@%s is enslaved to a %s: %w", veth.Attrs().Name, d.node, m.Type(), ErrUnsupportedLayout)
	}
	return m, true, nil
}

// route asks the node which interface forwards traffic to target that
// enters from entry with the pod's source address. It returns
// ErrNoForwardRoute only when the node's forwarding sysctl for that
// traffic is really 0 (IPv4 refuses the lookup then; IPv6 answers it and
// drops the packets); any other failed lookup is reported as the kernel
// answered it. A target the node broadcasts to is no peer (a
// *NotPeerError); one it delivers to itself is answered by a local route
// (see local), whose link is the loopback device.
func (d *discovery) route(entry netlink.Link, src netip.Addr) (netlink.Route, netlink.Link, error) {
	iif := entry.Attrs().Name
	opts := &netlink.RouteGetOptions{Iif: iif}
	if src.IsValid() {
		opts.SrcAddr = src.AsSlice()
	}
	d.lookup = opts
	routes, err := d.nodeNL.RouteGetWithOptions(d.dest.AsSlice(), opts)
	delivered := err == nil && len(routes) > 0 && local(routes[0]) // no forwarding needed
	if off := forwardingOff(d.node, d.dest, iif); off != "" && !delivered {
		return netlink.Route{}, nil, fmt.Errorf("forward %s from %s@%s: %w: %s in the node netns", d.target, iif, d.node, ErrNoForwardRoute, off)
	}
	if err != nil || len(routes) == 0 {
		return netlink.Route{}, nil, fmt.Errorf("find the node's forwarding route to %s from %s@%s: %w", d.target, iif, d.node, orNoRoute(err))
	}
	r := routes[0]
	if err := d.forwarded(r); err != nil {
		return netlink.Route{}, nil, err
	}
	out, err := d.nodeNL.LinkByIndex(r.LinkIndex)
	if err != nil {
		return netlink.Route{}, nil, fmt.Errorf("read egress interface %d in %s: %w", r.LinkIndex, d.node, err)
	}
	return r, out, nil
}

// egress adds the points from the node's egress interface out on: a VXLAN
// device and its underlay, a Geneve or IPIP tunnel and its underlay,
// another pod's host-side veth (routed), a bridge and the port of the
// target behind it, or an uplink.
func (d *discovery) egress(out netlink.Link, r netlink.Route) error {
	switch {
	case out.Type() == "vxlan":
		vx := out.(*netlink.Vxlan)
		d.add(d.node, vx, KindVXLAN, TX).TunnelPort = vx.Port
		uplink, err := d.underlay(vx, r)
		if err != nil {
			return err
		}
		d.add(d.node, uplink, KindUplink, TX)
		d.turn = TurnNetwork
	case out.Type() == "geneve":
		gn := out.(*netlink.Geneve)
		d.add(d.node, gn, KindGeneve, TX).TunnelPort = int(gn.Dport)
		return d.tunnelUnderlay(gn, gn.Remote, r)
	case out.Type() == "ipip":
		tun := out.(*netlink.Iptun)
		d.add(d.node, tun, KindIPIP, TX)
		return d.tunnelUnderlay(tun, tun.Remote, r)
	case out.Type() == "bridge":
		d.add(d.node, out, KindBridge, TX)
		return d.bridgePort(out, d.nodeNL, out)
	case d.isPodVeth(out, r):
		d.add(d.node, out, KindVeth, TX)
		d.turn = TurnPeer
	default:
		d.add(d.node, out, KindUplink, TX) // routed without overlay (host-gw), or leaving the cluster
		d.turn = TurnNetwork
	}
	return nil
}

// isPodVeth reports whether out, the node's egress toward target, is the
// host side of a pod's veth on this node, as with a routed CNI (ptp,
// Calico, Cilium): a veth the target is reached on without a gateway, by a
// host route (the /32 or /128 such plugins add per pod), or with no
// address of target's family on it (Calico's unnumbered veths). Whether
// the veth has an address says nothing against it: every host side of a
// ptp pod's veth carries the same gateway address.
func (d *discovery) isPodVeth(out netlink.Link, r netlink.Route) bool {
	if out.Type() != "veth" || r.Gw != nil {
		return false
	}
	if d.hostRoute() {
		return true
	}
	addrs, err := d.nodeNL.AddrList(out, family(d.target))
	return err == nil && !numbered(addrs)
}

// hostRoute reports whether the node's routing entry that forwards the
// probes (RTM_F_FIB_MATCH: the entry itself, not the per-destination
// result RouteGet gives) is a host route, one whose prefix is the whole
// address. A lookup that fails says no.
func (d *discovery) hostRoute() bool {
	opts := netlink.RouteGetOptions{FIBMatch: true}
	if d.lookup != nil {
		opts = *d.lookup
		opts.FIBMatch = true
	}
	routes, err := d.nodeNL.RouteGetWithOptions(d.dest.AsSlice(), &opts)
	if err != nil || len(routes) == 0 || routes[0].Dst == nil {
		return false
	}
	ones, bits := routes[0].Dst.Mask.Size()
	return bits > 0 && ones == bits
}

// numbered reports whether addrs has an address that numbers its link,
// that is one other than an IPv6 link-local (fe80::/10) address: the kernel
// gives every IPv6-capable link one of those by itself, the host side of a
// Calico pod's veth included (fe80::ecee:eeff:feee:eeee, the pod's IPv6
// gateway), so it says nothing about whether the link is unnumbered.
func numbered(addrs []netlink.Addr) bool {
	for _, a := range addrs {
		if a.IPNet == nil || !(a.IP.To4() == nil && a.IP.IsLinkLocalUnicast()) {
			return true
		}
	}
	return false
}

// bridgePort adds the bridge port behind which target lives: it resolves
// target's MAC address in the neighbour table of h's namespace on link (the
// sender's side of the L2 segment), asking the kernel to resolve it when
// there is no entry, and finds the port in bridge's FDB.
func (d *discovery) bridgePort(bridge netlink.Link, h *netlink.Handle, link netlink.Link) error {
	mac, err := resolveMAC(h, link, d.dest)
	if err != nil {
		return fmt.Errorf("find %s on bridge %s@%s: %w", d.target, bridge.Attrs().Name, d.node, err)
	}
	fdb, err := RetryDump(func() ([]netlink.Neigh, error) { return d.nodeNL.NeighList(0, unix.AF_BRIDGE) })
	if err != nil {
		return fmt.Errorf("read the FDB of %s@%s: %w", bridge.Attrs().Name, d.node, err)
	}
	for _, n := range fdb {
		if n.MasterIndex == bridge.Attrs().Index && n.LinkIndex != bridge.Attrs().Index && bytes.Equal(n.HardwareAddr, mac) {
			port, err := d.nodeNL.LinkByIndex(n.LinkIndex)
			if err != nil {
				return fmt.Errorf("read port %d of %s@%s: %w", n.LinkIndex, bridge.Attrs().Name, d.node, err)
			}
			d.add(d.node, port, KindVeth, TX)
			d.turn = TurnPeer
			return nil
		}
	}
	return fmt.Errorf("find %s (%s) on bridge %s@%s: no port has learned that address: %w", d.target, mac, bridge.Attrs().Name, d.node, ErrUnsupportedLayout)
}

// tunnelUnderlay adds the uplink that carries a point-to-point tunnel's
// packets: toward the device's fixed remote, else (Calico's tunl0, a
// Geneve device in external mode with an onlink route) toward the route's
// gateway, which is the remote node's address.
func (d *discovery) tunnelUnderlay(tun netlink.Link, remote net.IP, r netlink.Route) error {
	peer := remote
	if len(peer) == 0 || peer.IsUnspecified() {
		peer = r.Gw
	}
	if len(peer) == 0 {
		return fmt.Errorf("find the underlay of %s@%s toward %s: the tunnel has no remote and the route no gateway: %w",
			tun.Attrs().Name, d.node, d.dest, ErrUnsupportedLayout)
	}
	routes, err := d.nodeNL.RouteGet(peer)
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("find the route to tunnel remote %s of %s@%s: %w", peer, tun.Attrs().Name, d.node, orNoRoute(err))
	}
	uplink, err := d.nodeNL.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return fmt.Errorf("read underlay %d of %s@%s: %w", routes[0].LinkIndex, tun.Attrs().Name, d.node, err)
	}
	d.add(d.node, uplink, KindUplink, TX)
	d.turn = TurnNetwork
	return nil
}

// underlay finds the interface that carries the VXLAN device's packets to the
// remote VTEP: the route toward the VTEP found through the neighbour and FDB
// entries (what the kernel really does), else the device's VtepDevIndex.
func (d *discovery) underlay(vx *netlink.Vxlan, r netlink.Route) (netlink.Link, error) {
	vtep, ok, err := d.remoteVTEP(vx, r)
	if err != nil {
		return nil, err
	}
	if ok {
		if routes, err := d.nodeNL.RouteGet(vtep.AsSlice()); err == nil && len(routes) > 0 {
			return d.nodeNL.LinkByIndex(routes[0].LinkIndex)
		}
	}
	if vx.VtepDevIndex > 0 {
		return d.nodeNL.LinkByIndex(vx.VtepDevIndex)
	}
	return nil, fmt.Errorf("find the underlay of %s@%s toward %s: no FDB entry and no underlay device: %w",
		vx.Name, d.node, d.target, ErrUnsupportedLayout)
}

// remoteVTEP resolves the next hop on the VXLAN device to a MAC address
// (neighbour table) and the MAC to a remote VTEP address (bridge FDB). A
// next hop with no entry in either table is not an error (ok is false:
// the caller falls back to the device's underlay); a dump that fails is.
func (d *discovery) remoteVTEP(vx *netlink.Vxlan, r netlink.Route) (vtep netip.Addr, ok bool, err error) {
	hop := r.Gw
	if hop == nil {
		hop = d.dest.AsSlice()
	}
	neighs, err := RetryDump(func() ([]netlink.Neigh, error) { return d.nodeNL.NeighList(vx.Index, family(d.target)) })
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("list the neighbours of %s@%s: %w", vx.Name, d.node, err)
	}
	var mac net.HardwareAddr
	for _, n := range neighs {
		if n.IP.Equal(hop) && len(n.HardwareAddr) > 0 {
			mac = n.HardwareAddr
		}
	}
	if mac == nil {
		return netip.Addr{}, false, nil
	}
	fdb, err := RetryDump(func() ([]netlink.Neigh, error) { return d.nodeNL.NeighList(vx.Index, unix.AF_BRIDGE) })
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("list the FDB of %s@%s: %w", vx.Name, d.node, err)
	}
	for _, n := range fdb {
		if n.HardwareAddr.String() == mac.String() && n.IP != nil {
			a, ok := netip.AddrFromSlice(n.IP)
			return a.Unmap(), ok, nil
		}
	}
	return netip.Addr{}, false, nil
}

func orNoRoute(err error) error {
	if err != nil {
		return err
	}
	return errors.New("no route")
}
