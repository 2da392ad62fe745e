package topology

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Discover finds the capture points a probe from the pod namespace to target
// crosses on the node, following kernel state only, never interface names:
// the pod's route to target and its interface, the veth peer on the node
// (IFLA_LINK and the link netnsid), its master bridge, the node's forwarding
// decision for traffic entering from there (RouteGet with iif), and, when the
// egress is a VXLAN device, its underlay device toward the remote VTEP.
func Discover(pod, node *NetNS, target netip.Addr) (*Path, error) {
	if pod.Inode() == node.Inode() {
		return nil, fmt.Errorf("discover path: source netns %s is the node netns (hostNetwork): %w", pod, ErrUnsupportedLayout)
	}
	podNL, err := NetlinkHandle(pod)
	if err != nil {
		return nil, err
	}
	defer podNL.Close()
	nodeNL, err := NetlinkHandle(node)
	if err != nil {
		return nil, err
	}
	defer nodeNL.Close()

	d := discovery{pod: pod, node: node, podNL: podNL, nodeNL: nodeNL, target: target}
	return d.run()
}

type discovery struct {
	pod, node     *NetNS
	podNL, nodeNL *netlink.Handle
	target        netip.Addr
	points        []Point
}

func (d *discovery) run() (*Path, error) {
	podLink, src, err := d.podEgress()
	if err != nil {
		return nil, err
	}
	hostVeth, err := d.vethPeer(podLink)
	if err != nil {
		return nil, err
	}
	d.add(d.pod, podLink, KindPod, TX)
	d.add(d.node, hostVeth, KindVeth, RX)
	entry := hostVeth
	if bridge, ok, err := d.master(hostVeth); err != nil {
		return nil, err
	} else if ok {
		d.add(d.node, bridge, KindBridge, RX)
		entry = bridge
	}
	if err := d.forward(entry, src); err != nil {
		return nil, err
	}
	return &Path{
		Target: d.target,
		Source: Source{NetNS: d.pod.ID(), Interface: podLink.Attrs().Name, Addr: src},
		Points: d.points,
	}, nil
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

// podEgress returns the pod interface the route to target leaves by, and the
// source address the pod uses.
func (d *discovery) podEgress() (netlink.Link, netip.Addr, error) {
	routes, err := d.podNL.RouteGet(d.target.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, netip.Addr{}, fmt.Errorf("find route to %s in pod netns %s: %w", d.target, d.pod, orNoRoute(err))
	}
	link, err := d.podNL.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("read pod interface %d in %s: %w", routes[0].LinkIndex, d.pod, err)
	}
	src, _ := netip.AddrFromSlice(routes[0].Src)
	return link, src.Unmap(), nil
}

// vethPeer follows the pod's veth to its peer, which must be in the node
// netns.
func (d *discovery) vethPeer(podLink netlink.Link) (netlink.Link, error) {
	a := podLink.Attrs()
	if podLink.Type() != "veth" {
		return nil, fmt.Errorf("pod interface %s@%s is a %s, not a veth: %w", a.Name, d.pod, podLink.Type(), ErrUnsupportedLayout)
	}
	nodeID, err := d.podNL.GetNetNsIdByFd(d.node.Fd())
	if err != nil {
		return nil, fmt.Errorf("look up node netns %s from pod %s: %w", d.node, d.pod, err)
	}
	if a.NetNsID < 0 || a.NetNsID != nodeID {
		return nil, fmt.Errorf("veth peer of %s@%s is not in the node netns %s (peer netnsid %d, node's %d): pass the node's netns with --node-netns",
			a.Name, d.pod, d.node, a.NetNsID, nodeID)
	}
	peer, err := d.nodeNL.LinkByIndex(a.ParentIndex)
	if err != nil {
		return nil, fmt.Errorf("read veth peer %d of %s@%s in %s: %w", a.ParentIndex, a.Name, d.pod, d.node, err)
	}
	return peer, nil
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

// forward asks the node which interface forwards traffic that enters from
// entry with the pod's source address, and adds it and the underlay.
func (d *discovery) forward(entry netlink.Link, src netip.Addr) error {
	opts := &netlink.RouteGetOptions{Iif: entry.Attrs().Name}
	if src.IsValid() {
		opts.SrcAddr = src.AsSlice()
	}
	routes, err := d.nodeNL.RouteGetWithOptions(d.target.AsSlice(), opts)
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("find the node's forwarding route to %s from %s@%s: %w (is net.ipv4.ip_forward on?)",
			d.target, entry.Attrs().Name, d.node, orNoRoute(err))
	}
	r := routes[0]
	out, err := d.nodeNL.LinkByIndex(r.LinkIndex)
	if err != nil {
		return fmt.Errorf("read egress interface %d in %s: %w", r.LinkIndex, d.node, err)
	}
	if out.Attrs().Index == entry.Attrs().Index {
		return fmt.Errorf("%s is reached through %s@%s itself (same-node pod): %w", d.target, out.Attrs().Name, d.node, ErrUnsupportedLayout)
	}
	vx, ok := out.(*netlink.Vxlan)
	if !ok {
		d.add(d.node, out, KindUplink, TX) // routed without overlay (host-gw)
		return nil
	}
	d.add(d.node, vx, KindVXLAN, TX).TunnelPort = vx.Port
	uplink, err := d.underlay(vx, r)
	if err != nil {
		return err
	}
	d.add(d.node, uplink, KindUplink, TX)
	return nil
}

// underlay finds the interface that carries the VXLAN device's packets to the
// remote VTEP: the route toward the VTEP found through the neighbour and FDB
// entries (what the kernel really does), else the device's VtepDevIndex.
func (d *discovery) underlay(vx *netlink.Vxlan, r netlink.Route) (netlink.Link, error) {
	if vtep, ok := d.remoteVTEP(vx, r); ok {
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
// (neighbour table) and the MAC to a remote VTEP address (bridge FDB).
func (d *discovery) remoteVTEP(vx *netlink.Vxlan, r netlink.Route) (netip.Addr, bool) {
	hop := r.Gw
	if hop == nil {
		hop = d.target.AsSlice()
	}
	neighs, err := retryDump(func() ([]netlink.Neigh, error) { return d.nodeNL.NeighList(vx.Index, unix.AF_INET) })
	if err != nil {
		return netip.Addr{}, false
	}
	var mac net.HardwareAddr
	for _, n := range neighs {
		if n.IP.Equal(hop) && len(n.HardwareAddr) > 0 {
			mac = n.HardwareAddr
		}
	}
	if mac == nil {
		return netip.Addr{}, false
	}
	fdb, err := retryDump(func() ([]netlink.Neigh, error) { return d.nodeNL.NeighList(vx.Index, unix.AF_BRIDGE) })
	if err != nil {
		return netip.Addr{}, false
	}
	for _, n := range fdb {
		if n.HardwareAddr.String() == mac.String() && n.IP != nil {
			a, ok := netip.AddrFromSlice(n.IP)
			return a.Unmap(), ok
		}
	}
	return netip.Addr{}, false
}

func orNoRoute(err error) error {
	if err != nil {
		return err
	}
	return errors.New("no route")
}
