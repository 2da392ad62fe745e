package containerd

import (
	"fmt"
	"net/netip"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// PTP is a CNI network of the reference ptp plugin with host-local
// addresses, as PTPConfList renders it: a routed veth per pod, no bridge.
// The plugin gives every pod's host-side veth the same Gateway address as
// a /32 and routes to the pod with a host route on that veth; the pod's
// default route goes via Gateway.
type PTP struct {
	Name                 string       // the CNI network's name
	Subnet               netip.Prefix // host-local's subnet
	RangeStart, RangeEnd netip.Addr   // bounds of the addresses handed out; invalid means the whole subnet
	Gateway              netip.Addr   // on every host veth; invalid means host-local's, the subnet's first address
	MTU                  int          // of the veths; 0 means the plugin's 1500
	IPMasq               bool         // masquerade traffic from the pods leaving Subnet
}

// NodePTP is a ptp network in node's pod CIDR: host-local from .16 to
// .254 (clear of the lab's own pods), the gateway .1 (which the lab's
// cni0 carries too, as every ptp host veth will), no masquerading: the
// lab's other node routes the pod CIDR back to this one.
func NodePTP(node *lab.Node) PTP {
	return PTP{
		Name:       "cnitrace-ptp",
		Subnet:     node.PodCIDR.Masked(),
		RangeStart: hostIn(node.PodCIDR, 16),
		RangeEnd:   hostIn(node.PodCIDR, 254),
		Gateway:    hostIn(node.PodCIDR, 1),
		MTU:        lab.MTU,
	}
}

// PTPConfList renders p as a CNI network configuration list: one ptp
// plugin with host-local IPAM and a default route.
func PTPConfList(p PTP) ([]byte, error) {
	if p.Name == "" {
		return nil, fmt.Errorf("render CNI network: needs a name")
	}
	ipam, err := hostLocal(p.Name, addrRange{p.Subnet, p.RangeStart, p.RangeEnd, p.Gateway}, true)
	if err != nil {
		return nil, err
	}
	plugin := map[string]any{"type": "ptp", "ipMasq": p.IPMasq, "ipam": ipam}
	if p.MTU > 0 {
		plugin["mtu"] = p.MTU
	}
	return confList(p.Name, plugin)
}

// Macvlan is a CNI network of the reference macvlan plugin with
// host-local addresses, as MacvlanConfList renders it: no veth, the pod's
// interface is a macvlan on Master, a device of the node.
type Macvlan struct {
	Name                 string       // the CNI network's name
	Master               string       // the parent device in the node netns (configuration, as a real conflist names it)
	Mode                 string       // bridge (the plugin's default), vepa, private or passthru
	Subnet               netip.Prefix // host-local's subnet: the parent's own L2 network
	RangeStart, RangeEnd netip.Addr   // bounds of the addresses handed out; invalid means the whole subnet
	MTU                  int          // 0 means the parent's
}

// MacvlanSubnet is the L2 network NodeMacvlan puts its pods in, on the
// wire between the lab's nodes: a documentation range
// (docs/real-runtime.md), since the lab's own underlay is a /30 with no
// room for pods. A host that answers them there needs an address in it.
var MacvlanSubnet = netip.MustParsePrefix("198.51.100.0/24")

// NodeMacvlan is a bridge-mode macvlan network on node's uplink, in
// MacvlanSubnet: host-local from .16 to .30, no gateway and no default
// route, so the pods reach only hosts on that link.
func NodeMacvlan(node *lab.Node) Macvlan {
	return Macvlan{
		Name:       "cnitrace-macvlan",
		Master:     lab.UplinkName,
		Mode:       "bridge",
		Subnet:     MacvlanSubnet,
		RangeStart: hostIn(MacvlanSubnet, 16),
		RangeEnd:   hostIn(MacvlanSubnet, 30),
	}
}

// MacvlanConfList renders m as a CNI network configuration list: one
// macvlan plugin with host-local IPAM, without routes.
func MacvlanConfList(m Macvlan) ([]byte, error) {
	if m.Name == "" || m.Master == "" {
		return nil, fmt.Errorf("render CNI network %q: needs a name and a master device", m.Name)
	}
	ipam, err := hostLocal(m.Name, addrRange{Subnet: m.Subnet, Start: m.RangeStart, End: m.RangeEnd}, false)
	if err != nil {
		return nil, err
	}
	plugin := map[string]any{"type": "macvlan", "master": m.Master, "ipam": ipam}
	if m.Mode != "" {
		plugin["mode"] = m.Mode
	}
	if m.MTU > 0 {
		plugin["mtu"] = m.MTU
	}
	return confList(m.Name, plugin)
}

// Bandwidth is the reference bandwidth plugin's shaping of every pod of
// the network, chained after its main plugin: rates in bits per second,
// bursts in bits, a direction with a zero rate unshaped. Ingress (traffic
// to the pod) is a TBF on the pod's host veth; egress (from the pod) a TBF
// on an ifb device the host veth's ingress is redirected to. The plugin
// sizes each TBF's queue for 25 ms at the rate, plus the burst. A burst
// must hold a whole packet (at least the MTU in bytes) or nothing passes.
//
// The values are set in the plugin's own configuration, which wins over
// the runtimeConfig a runtime passes: containerd derives that from the
// pod's kubernetes.io/{ingress,egress}-bandwidth annotations with a burst
// so large that a short test shapes nothing.
type Bandwidth struct {
	IngressRate, IngressBurst uint64
	EgressRate, EgressBurst   uint64
}

// BridgeBandwidthConfList renders the bridge network b with the bandwidth
// plugin chained after it, shaping as bw says.
func BridgeBandwidthConfList(b Bridge, bw Bandwidth) ([]byte, error) {
	if (bw.IngressRate == 0) != (bw.IngressBurst == 0) || (bw.EgressRate == 0) != (bw.EgressBurst == 0) || bw == (Bandwidth{}) {
		return nil, fmt.Errorf("render CNI network %q: the bandwidth plugin needs a rate and a burst for each direction it shapes, and one direction at least", b.Name)
	}
	bridge, err := bridgePlugin(b)
	if err != nil {
		return nil, err
	}
	shaper := map[string]any{"type": "bandwidth"}
	for key, v := range map[string]uint64{
		"ingressRate": bw.IngressRate, "ingressBurst": bw.IngressBurst,
		"egressRate": bw.EgressRate, "egressBurst": bw.EgressBurst,
	} {
		if v > 0 {
			shaper[key] = v
		}
	}
	return confList(b.Name, bridge, shaper)
}

// hostIn is the address of prefix p whose last byte is host.
func hostIn(p netip.Prefix, host byte) netip.Addr {
	a := p.Masked().Addr().As4()
	a[3] = host
	return netip.AddrFrom4(a)
}
