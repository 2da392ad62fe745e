// Package lab builds an emulated two-node flannel cluster (or, with
// Config.Layout, a routed-veth Calico-style one) inside network
// namespaces, for tests and for `cnitrace-lab up|down|demo`.
//
// Every namespace a lab creates is pinned under NamedNetNSDir with
// the lab's name as prefix (<name>-n1, <name>-n1-pod, <name>-n1-pod2,
// <name>-n2, <name>-n2-pod, <name>-n2-pod2, and <name>-wire when a network
// fault asks for it), so `ip netns exec` works on it and Down can remove a lab
// left standing by another process. A lab never touches the interfaces,
// routes, sysctls or firewall of the namespace it is built from; its
// addresses exist only inside its own namespaces. docs/lab.md draws the
// topology.
//
// A lab can have a ClusterIP Service (Config.Service), built as
// kube-proxy's iptables or nftables mode builds it (Config.ServiceMode),
// and pods that serve TCP and DNS (Config.Backends):
// dnsmasq processes started inside the pods' namespaces, their pid files
// under RunDir, which Close and Down stop and remove.
//
// Building a lab needs root (CAP_SYS_ADMIN to create namespaces,
// CAP_NET_ADMIN inside them). Tests use the labtest subpackage, which skips
// when not root and registers the cleanup.
package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/cnitrace/cnitrace/topology"
)

// ErrNoLab is returned by Down when no namespace of the named lab exists.
var ErrNoLab = errors.New("no such lab")

// Names and numbers of the emulated flannel node, as flannel's vxlan backend
// and its CNI bridge plugin set them up.
const (
	BridgeName = "cni0"      // the CNI bridge in each node
	VXLANName  = "flannel.1" // the overlay device in each node
	VXLANPort  = 8472        // flannel's VXLAN UDP port (not IANA's 4789)
	VNI        = 1           // flannel's VXLAN network identifier
	UplinkName = "eth0"      // each node's interface toward the other node
	PodIfName  = "eth0"      // the pod's interface, inside the pod netns
	MTU        = 1450        // pod, bridge and overlay MTU (1500 - VXLAN overhead)
)

// NamePrefix starts the name of every lab that Config leaves unnamed.
const NamePrefix = "cnitrace-"

// MaxNameLen is the longest lab name accepted.
const MaxNameLen = 24

// Config says what lab to build.
type Config struct {
	// Name prefixes every namespace of the lab. Empty means a random
	// NamePrefix + 6 hex digits. A given name must pass ValidateName. List
	// shows every lab Up built, whatever its name (MarkerFile).
	Name string
	// Layout says how pods are wired; empty means LayoutFlannel.
	Layout Layout
	// Faults are set up once the lab is built (see Lab.SetFaults).
	Faults Faults
	// Service gives the lab a ClusterIP Service at ServiceAddr, its rules
	// on every node, as kube-proxy builds them in ServiceMode: it
	// translates ServicePorts only (TCP and UDP; ICMP never, as on a real
	// cluster) to node 2's pod and sibling, and implies Backends. It needs
	// iptables (nft for ServiceNFTables).
	Service bool
	// ServiceMode says which kube-proxy mode builds the Service; empty
	// means ServiceIPTables. It needs Service.
	ServiceMode ServiceMode
	// External adds the namespace <name>-ext, a host outside the cluster
	// at ExternalAddr behind node 1's ExternalLink, toward which node 1
	// masquerades pod traffic. It needs iptables.
	External bool
	// WireCommand, when set, runs the delay line in a background process
	// (see Lab.WireCommand) instead of in this one.
	WireCommand func(lab string, n Network) *exec.Cmd
	// Backends makes every pod serve: TCP on BackendPort (answered by the
	// lab itself) and DNS on DNSPort (dnsmasq, from the Debian package
	// dnsmasq-base, authoritative for DNSZone), on each of its addresses
	// and nowhere else. A Service implies it. Their
	// pid files and logs are in RunDir; Close and Down stop them.
	Backends bool
	// BackendCommand, when set, runs the TCP servers in a background
	// process (see Lab.BackendCommand) instead of in this one.
	BackendCommand func(lab string) *exec.Cmd
}

// Lab is a standing lab. Its handles are open until Close.
type Lab struct {
	Name   string
	Layout Layout  // never empty: Up and Open fill it in
	Nodes  []*Node // Nodes[0] is node 1
	Wire   *Wire   // nil unless a network fault put the wire between the nodes
	// Service is ServiceAddr when the nodes translate it (Config.Service),
	// else invalid. A lab from Open does not know and leaves it invalid.
	Service netip.Addr
	// ServiceMode is how the nodes build the Service (never empty when
	// Service is valid), "" without one.
	ServiceMode ServiceMode
	External    *External // nil unless Config.External

	// Faults are the faults as last set by Up or SetFaults. A lab from
	// Open does not know those set by another process and starts at zero.
	Faults Faults

	// WireCommand, when set, says how to run the delay line out of this
	// process: it returns the command that runs it for the lab called lab
	// (ServeWire(ctx, lab, n) in that process; `cnitrace-lab wire`).
	// Up and SetFaults start it detached (new session, stdin and stdout on
	// /dev/null, stderr to WireLogFile), record its pid in WirePIDFile and
	// wait until its sockets are open; Down and Close stop it. When nil,
	// the delay line runs in this process, on goroutines the Lab owns,
	// until Close.
	WireCommand func(lab string, n Network) *exec.Cmd

	// Backends reports whether the pods serve BackendPort and DNSPort
	// (Config.Backends); Open tells by RunDir.
	Backends bool
	// BackendCommand, when set, says how to run the backends' TCP servers
	// out of this process, as WireCommand does for the delay line: it
	// returns the command that runs ServeBackends(ctx, lab) (`cnitrace-lab
	// backends`), which Up starts detached with its pid in BackendPIDFile
	// and its stderr in BackendLogFile; Down and Close stop it. When nil,
	// they run on goroutines the Lab owns, until Close. The DNS servers
	// are always processes of their own.
	BackendCommand func(lab string) *exec.Cmd

	created []string // namespaces this lab pinned, in creation order
	marked  bool     // this lab created its MarkerFile
	run     runState // what this process runs for the lab, per system
}

// TraceArgs are the flags of `cnitrace trace` (and `path`) that probe
// from node 1's pod to node 2's, with node 1 as the node netns.
func (l *Lab) TraceArgs() []string {
	n1, n2 := l.Nodes[0], l.Nodes[1]
	return []string{"--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", n2.Pod.Addr.String()}
}

// Wire is the namespace between the nodes' uplinks: node 1's eth0 is the
// veth peer of WireLink1, node 2's eth0 that of WireLink2, and a delay line
// (DelayLine) forwards the frames between the two after a delay.
type Wire struct {
	Name   string          // namespace name, <lab>-wire
	NSPath string          // /run/netns/<lab>-wire
	NS     *topology.NetNS // open until Lab.Close
}

// The wire's links, in the wire namespace.
const (
	WireLink1 = "w1" // peer of node 1's uplink
	WireLink2 = "w2" // peer of node 2's uplink
)

// Node is one emulated Kubernetes node: a network namespace standing in for
// the host, with a CNI bridge (none when routed), a VXLAN overlay device and
// an uplink.
type Node struct {
	Name       string          // namespace name, <lab>-n<i>
	NSPath     string          // /run/netns/<lab>-n<i>
	NS         *topology.NetNS // open until Lab.Close
	PodCIDR    netip.Prefix    // 10.244.<i>.0/24
	PodCIDR6   netip.Prefix    // fd00:10:244:<i>::/64
	UplinkAddr netip.Addr      // 192.168.255.<i> on UplinkName
	Pod        *Pod            // the pod traces start from: 10.244.<i>.2
	Sibling    *Pod            // a second pod on the same node, 10.244.<i>.3: the peer of same-node traces

	num int // i, 1-based
}

// Pod is a pod on a node: its own namespace with PodIfName, the other end
// of a veth pair whose host side (HostVeth) is enslaved to BridgeName, or on
// the routed layout stands alone with proxy ARP.
type Pod struct {
	Name     string          // namespace name, <lab>-n<i>-pod (Sibling: -pod2)
	NSPath   string          // /run/netns/<lab>-n<i>-pod (Sibling: -pod2)
	NS       *topology.NetNS // open until Lab.Close
	Addr     netip.Addr      // 10.244.<i>.2 (Sibling: .3)
	Addr6    netip.Addr      // fd00:10:244:<i>::2 (Sibling: ::3); a /64 on eth0 (flannel), a /128 (routed)
	HostVeth string          // veth (rv when routed) + 8 random hex digits, in the node netns
}

// ValidateName reports whether name can name a lab: 1 to MaxNameLen
// characters from [a-z0-9-], starting and ending with a letter or digit.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("invalid lab name %q: must be 1 to %d characters", name, MaxNameLen)
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("invalid lab name %q: only a-z, 0-9 and - are allowed", name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("invalid lab name %q: must not start or end with -", name)
	}
	return nil
}

// resolveName returns cfg's name, validated, or a fresh random one.
func resolveName(cfg Config) (string, error) {
	if cfg.Name != "" {
		return cfg.Name, ValidateName(cfg.Name)
	}
	suffix, err := randomHex(3)
	if err != nil {
		return "", fmt.Errorf("choose lab name: %w", err)
	}
	return NamePrefix + suffix, nil
}

// randomHex returns n random bytes as 2n hex digits.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// nodeCount is how many nodes a lab has.
const nodeCount = 2

// nodeNSName, podNSName and siblingNSName name the namespaces of node i of
// lab.
func nodeNSName(lab string, i int) string    { return lab + "-n" + strconv.Itoa(i) }
func podNSName(lab string, i int) string     { return nodeNSName(lab, i) + "-pod" }
func siblingNSName(lab string, i int) string { return nodeNSName(lab, i) + "-pod2" }
func wireNSName(lab string) string           { return lab + "-wire" }

// nsNames lists every namespace name a lab called name can have.
func nsNames(name string) []string {
	var names []string
	for i := 1; i <= nodeCount; i++ {
		names = append(names, nodeNSName(name, i), podNSName(name, i), siblingNSName(name, i))
	}
	return append(names, wireNSName(name), extNSName(name))
}

// newNode plans node i of lab: names, paths and addresses, no handles yet.
// Both layouts are dual-stack; Open takes IPv6 away again for a lab
// built before they were.
func newNode(lab string, i int) *Node {
	pod := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
	n := &Node{
		Name:       nodeNSName(lab, i),
		NSPath:     filepath.Join(NamedNetNSDir, nodeNSName(lab, i)),
		PodCIDR:    pod,
		UplinkAddr: netip.AddrFrom4([4]byte{192, 168, 255, byte(i)}),
		Pod:        newPod(podNSName(lab, i), netip.AddrFrom4([4]byte{10, 244, byte(i), 2})),
		Sibling:    newPod(siblingNSName(lab, i), netip.AddrFrom4([4]byte{10, 244, byte(i), 3})),
		num:        i,
	}
	n.planIPv6(true)
	return n
}

// planIPv6 gives the node its IPv6 pod prefix and its pods their IPv6
// addresses, or, when dual is false, takes them away.
func (n *Node) planIPv6(dual bool) {
	if !dual {
		n.PodCIDR6, n.Pod.Addr6, n.Sibling.Addr6 = netip.Prefix{}, netip.Addr{}, netip.Addr{}
		return
	}
	n.PodCIDR6 = podCIDR6(n.num)
	n.Pod.Addr6 = hostAddr6(n.PodCIDR6, 2)
	n.Sibling.Addr6 = hostAddr6(n.PodCIDR6, 3)
}

// podCIDR6 is node i's IPv6 pod prefix, fd00:10:244:<i>::/64: from a ULA
// prefix of the lab's own, the IPv4 pod CIDR written in its hex digits.
func podCIDR6(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x00, 0x00, 0x10, 0x02, 0x44, 0x00, byte(i)}), 64)
}

// hostAddr6 is the address host in the /64 p: p's first 8 bytes, then host.
func hostAddr6(p netip.Prefix, host byte) netip.Addr {
	a := p.Addr().As16()
	a[15] = host
	return netip.AddrFrom16(a)
}

// newPod plans the pod whose namespace is called name.
func newPod(name string, addr netip.Addr) *Pod {
	return &Pod{Name: name, NSPath: filepath.Join(NamedNetNSDir, name), Addr: addr}
}

// pods returns the node's pods: Pod, then Sibling.
func (n *Node) pods() []*Pod { return []*Pod{n.Pod, n.Sibling} }

// gateway is the bridge's address, the pod's default gateway: 10.244.<i>.1.
func (n *Node) gateway() netip.Addr { return n.PodCIDR.Addr().Next() }

// vtepAddr is flannel.1's address, the network address of the pod CIDR.
func (n *Node) vtepAddr() netip.Addr { return n.PodCIDR.Addr() }

// dualStack reports whether the node's pods have IPv6 addresses.
func (n *Node) dualStack() bool { return n.PodCIDR6.IsValid() }

// gateway6 is the bridge's IPv6 address, the pods' IPv6 default gateway:
// fd00:10:244:<i>::1.
func (n *Node) gateway6() netip.Addr { return hostAddr6(n.PodCIDR6, 1) }

// vtepAddr6 is flannel.1's IPv6 address, the network address of the IPv6
// pod prefix (fd00:10:244:<i>::), as flannel's dual-stack gives
// flannel-v6.1.
func (n *Node) vtepAddr6() netip.Addr { return n.PodCIDR6.Addr() }

// vtepMAC is flannel.1's fixed MAC, 0e:00:00:00:00:0<i>: locally
// administered, deterministic, so the other node's FDB entry can be written
// before the device exists.
func (n *Node) vtepMAC() net.HardwareAddr {
	return net.HardwareAddr{0x0e, 0, 0, 0, 0, byte(n.num)}
}

// uplinkPrefix is the node's uplink address in the /30 between the nodes.
func (n *Node) uplinkPrefix() netip.Prefix { return netip.PrefixFrom(n.UplinkAddr, 30) }

// ipNet converts a prefix that keeps its host bits into what netlink takes.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// slash24 is a with the /24 of the pod network, host bits kept.
func slash24(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 24) }
