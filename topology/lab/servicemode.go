package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ServiceMode says how a lab's nodes build the Service (Config.Service):
// as one of kube-proxy's modes builds it. Either translates ServicePorts
// only (TCP and UDP, never ICMP), to node 2's pod and its sibling, and
// the pods serve them (Config.Backends is implied).
type ServiceMode string

// The service modes; docs/lab.md says what each builds and how it differs
// from kube-proxy.
const (
	// ServiceIPTables, the default, builds the Service as kube-proxy's
	// iptables mode does: KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-* chains
	// in the nat table, TCP and UDP only (ServicePorts), spread over
	// ServiceEndpoints by `-m statistic --mode random`.
	ServiceIPTables ServiceMode = "iptables"
	// ServiceNFTables builds it as kube-proxy's nftables mode does: table
	// ip kube-proxy, a verdict map from (daddr, protocol, port) to the
	// service chain, `numgen random mod 2` over the endpoint chains.
	ServiceNFTables ServiceMode = "nftables"
)

// ServiceModes lists every service mode, the default first.
var ServiceModes = []ServiceMode{ServiceIPTables, ServiceNFTables}

// ParseServiceMode returns the service mode called s.
func ParseServiceMode(s string) (ServiceMode, error) {
	m := ServiceMode(s)
	if err := m.Validate(); err != nil {
		return "", err
	}
	return m, nil
}

// Validate reports whether m is one of ServiceModes; empty means the
// default, ServiceIPTables.
func (m ServiceMode) Validate() error {
	if m == "" || slices.Contains(ServiceModes, m) {
		return nil
	}
	names := make([]string, len(ServiceModes))
	for i, v := range ServiceModes {
		names[i] = string(v)
	}
	return fmt.Errorf("unknown service mode %q (want %s)", string(m), strings.Join(names, ", "))
}

// orDefault is m, or ServiceIPTables when m is empty.
func (m ServiceMode) orDefault() ServiceMode {
	if m == "" {
		return ServiceIPTables
	}
	return m
}

// The Service as Kubernetes would name it: kube-proxy derives its chain
// names from these.
const (
	ServiceNamespace = "default"
	ServiceName      = "lab"
)

// ServicePort is one port of the lab's Service, as in a Service's spec.
type ServicePort struct {
	Name       string // the port's name: http, dns
	Protocol   string // tcp or udp, in lower case as kube-proxy writes it
	Port       uint16 // on ServiceAddr
	TargetPort uint16 // on each endpoint
}

// ServicePorts are the Service's ports: TCP 80 to the backends'
// BackendPort, UDP 53 to their DNS server.
var ServicePorts = []ServicePort{
	{Name: "http", Protocol: "tcp", Port: 80, TargetPort: BackendPort},
	{Name: "dns", Protocol: "udp", Port: 53, TargetPort: DNSPort},
}

// ServiceCIDR is the range ClusterIPs come from (kube-apiserver's default,
// --service-cluster-ip-range): ServiceAddr is in it.
var ServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

// ClusterCIDR is the pod network (kube-proxy's --cluster-cidr): traffic to
// the Service from outside it is masqueraded.
var ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

// ServiceEndpoints returns the addresses the Service sends its traffic
// to, node 2's pod and its sibling, or nil when the lab has no Service (a
// lab from Open does not know).
func (l *Lab) ServiceEndpoints() []netip.Addr {
	if !l.Service.IsValid() {
		return nil
	}
	n2 := l.Nodes[1]
	return []netip.Addr{n2.Pod.Addr, n2.Sibling.Addr}
}
