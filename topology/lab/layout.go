package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Layout says how a lab wires its nodes' pods.
type Layout string

// The layouts a lab can have; docs/lab.md draws both.
const (
	// LayoutFlannel, the default: the pod's veth is a port of the CNI
	// bridge BridgeName, nodes joined by VXLANName on VXLANPort.
	LayoutFlannel Layout = "flannel"
	// LayoutRouted is Calico's layout without a bridge: the pod's
	// host-side veth answers ARP for RoutedGateway (proxy ARP), the node
	// routes to the pod with a /32, and nodes are joined by
	// RoutedVXLANName on RoutedVXLANPort.
	LayoutRouted Layout = "routed"
)

// Layouts lists every layout, the default first.
var Layouts = []Layout{LayoutFlannel, LayoutRouted}

// Names and numbers of the routed topology. The names are unlike any real
// CNI's (Calico uses cali* and vxlan.calico), so nothing can lean on them.
const (
	RoutedVethPrefix = "rv"   // host-side pod veth: rv + 8 random hex digits
	RoutedVXLANName  = "ovl0" // the overlay device in each node
	RoutedVXLANPort  = 4789   // IANA's VXLAN port, as Calico uses
	RoutedVNI        = 4096   // Calico's default VXLAN network identifier
)

// RoutedGateway is the pod's default gateway in the routed layout, an
// address no interface has: the host-side veth answers ARP for it.
var RoutedGateway = netip.AddrFrom4([4]byte{169, 254, 1, 1})

// RoutedGateway6 is the pod's IPv6 default gateway in the routed layout,
// as Calico's: the link-local address the kernel derives (EUI-64) from
// RoutedVethMAC, so every host-side veth owns it and answers neighbour
// solicitations for it itself, with no proxy NDP.
var RoutedGateway6 = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")

// RoutedVethMAC is the MAC of every host-side pod veth in the routed
// layout, as Calico gives every cali* veth: the same on all of them
// (each is its own link, so nothing clashes), which makes RoutedGateway6
// the link-local address of each.
var RoutedVethMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}

// ParseLayout returns the layout called s.
func ParseLayout(s string) (Layout, error) {
	t := Layout(s)
	if err := t.Validate(); err != nil {
		return "", err
	}
	return t, nil
}

// Validate reports whether t is one of Layouts; empty means the
// default, LayoutFlannel.
func (t Layout) Validate() error {
	if t == "" {
		return nil
	}
	for _, v := range Layouts {
		if t == v {
			return nil
		}
	}
	return fmt.Errorf("unknown layout %q (want %s)", string(t), layoutNames())
}

func layoutNames() string {
	names := make([]string, len(Layouts))
	for i, t := range Layouts {
		names[i] = string(t)
	}
	return strings.Join(names, " or ")
}

// orDefault is t, or LayoutFlannel when t is empty.
func (t Layout) orDefault() Layout {
	if t == "" {
		return LayoutFlannel
	}
	return t
}

// wiring is what a layout names and numbers in each node.
type wiring struct {
	bridge     string // CNI bridge, "" when the layout has none
	vxlan      string // overlay device
	port       int    // VXLAN UDP port
	vni        int    // VXLAN network identifier
	vethPrefix string // host-side pod veth: prefix + 8 hex digits
	podSide    string // iptables -i/-o match for the pod side of node 1
}

func (t Layout) wiring() wiring {
	if t.orDefault() == LayoutRouted {
		return wiring{vxlan: RoutedVXLANName, port: RoutedVXLANPort, vni: RoutedVNI,
			vethPrefix: RoutedVethPrefix, podSide: RoutedVethPrefix + "+"}
	}
	return wiring{bridge: BridgeName, vxlan: VXLANName, port: VXLANPort, vni: VNI,
		vethPrefix: "veth", podSide: BridgeName}
}

// VXLANDevice is the name of the lab's overlay device in each node.
func (l *Lab) VXLANDevice() string { return l.Layout.wiring().vxlan }
