package lab

import (
	"net/netip"

	"github.com/cnitrace/cnitrace/topology"
)

// Addresses of the Service and the external host a lab gets with
// Config.Service and Config.External. They exist only inside the lab's
// namespaces: 203.0.113.0/24 is TEST-NET-3, reserved for documentation.
var (
	// ServiceAddr is the Service's ClusterIP: every node translates its
	// ServicePorts to ServiceEndpoints, as kube-proxy's rules do.
	ServiceAddr = netip.AddrFrom4([4]byte{10, 96, 0, 10})
	// ExternalAddr is the external host, outside the cluster, behind node
	// 1's ExternalLink.
	ExternalAddr = netip.AddrFrom4([4]byte{203, 0, 113, 10})
	// ExternalGateway is node 1's address on ExternalLink: the source of
	// pod traffic after node 1's MASQUERADE.
	ExternalGateway = netip.AddrFrom4([4]byte{203, 0, 113, 1})
)

// ExternalLink is node 1's interface toward the external host; the host's
// own is UplinkName.
const ExternalLink = "wan0"

// External is the namespace standing in for a host outside the cluster,
// <lab>-ext.
type External struct {
	Name   string          // namespace name, <lab>-ext
	NSPath string          // /run/netns/<lab>-ext
	NS     *topology.NetNS // open until Lab.Close
	Addr   netip.Addr      // ExternalAddr
}

func extNSName(lab string) string { return lab + "-ext" }

// masqueradeRules renders the iptables-restore input (for --noflush) that
// masquerades pod traffic leaving the pod network, as flannel's
// `-s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE` does, restricted to
// ExternalLink.
func masqueradeRules() []byte {
	return []byte("*nat\n" +
		"-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -o " + ExternalLink +
		` -m comment --comment "cnitrace lab masquerade" -j MASQUERADE` + "\n" +
		"COMMIT\n")
}
