package containerd_test

import (
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/cri"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedCRIFindPod proves the CRI client on a real runtime: a pod
// sandbox created through containerd's CRI, networked by the reference
// bridge plugin, is found by name, its network namespace opened, and the
// path from it discovered through the plugin's veth and the bridge: the
// lab's cni0, which the plugin finds and uses as on a flannel node, or
// one the plugin creates itself.
func TestPrivilegedCRIFindPod(t *testing.T) {
	containerdtest.Require(t)
	checkRootNetNSUnchanged(t) // registered first: checks after every other cleanup
	for _, tt := range []struct {
		name   string
		bridge func(*lab.Node) containerd.Bridge
	}{
		{"the lab's bridge", containerd.NodeBridge},
		{"the plugin's own bridge", ownBridge},
	} {
		t.Run(tt.name, func(t *testing.T) { findPodOn(t, tt.bridge) })
	}
}

// ownBridge is a network whose bridge and subnet the lab does not have:
// the plugin creates crbr0 with 10.88.<i>.1/24.
func ownBridge(node *lab.Node) containerd.Bridge {
	a := node.PodCIDR.Addr().As4()
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 88, a[2], 0}), 24)
	return containerd.Bridge{
		Name:    "cnitrace-own",
		Bridge:  "crbr0",
		Subnet:  subnet,
		Gateway: subnet.Addr().Next(),
		MTU:     lab.MTU,
		IPMasq:  true,
	}
}

// findPodOn runs containerd in node 1 of a fresh lab with the network
// bridge(node), creates default/web and checks what FindPod and Discover
// make of it.
func findPodOn(t *testing.T, bridge func(*lab.Node) containerd.Bridge) {
	l := labtest.New(t)
	node := l.Nodes[0]
	network := bridge(node)
	conf, err := containerd.BridgeConfList(network)
	if err != nil {
		t.Fatal(err)
	}
	d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sb, err := d.RunPod(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cri.Dial(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pod, err := c.FindPod(ctx, "/", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: found %s: %+v", c, pod, *pod)
	if pod.SandboxID != sb.ID || pod.UID != sb.UID {
		t.Errorf("found sandbox %s (uid %s), want %s (uid %s)", pod.SandboxID, pod.UID, sb.ID, sb.UID)
	}
	ns, err := pod.OpenNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if ns.Inode() == node.NS.Inode() {
		t.Fatalf("pod netns %s (from %s) is the node's", ns, pod.NetNSPath)
	}
	path, err := topology.Discover(ns, node.NS, l.Nodes[1].Pod.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("path to %s: %s", l.Nodes[1].Pod.Addr, path)
	checkPathStart(t, path, ns, node.NS)
	ping(t, pod.NetNSPath, network.Gateway.String())
	ping(t, pod.NetNSPath, l.Nodes[1].Pod.Addr.String())
}

// checkPathStart asserts, by kind and netns only, that path starts at the
// pod's interface, its host veth and the bridge in the node.
func checkPathStart(t *testing.T, path *topology.Path, pod, node *topology.NetNS) {
	t.Helper()
	want := []struct {
		kind topology.Kind
		ns   *topology.NetNS
	}{{topology.KindPod, pod}, {topology.KindVeth, node}, {topology.KindBridge, node}}
	if len(path.Points) < len(want) {
		t.Fatalf("path %s has %d points, want at least %d", path, len(path.Points), len(want))
	}
	for i, w := range want {
		if p := path.Points[i]; p.Kind != w.kind || p.NetNS != w.ns.ID() {
			t.Errorf("point %d is %s (%s), want kind %s in %s", i, p.Name(), p.Kind, w.kind, w.ns)
		}
	}
}

// ping sends one echo request from the namespace at nsPath to addr.
func ping(t *testing.T, nsPath, addr string) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+nsPath, "--", "ping", "-c", "1", "-W", "5", addr).CombinedOutput()
	if err != nil {
		t.Errorf("ping %s from %s: %v: %s", addr, nsPath, err, out)
	}
}

// checkRootNetNSUnchanged records the links and iptables rules of the
// namespace the test runs in and registers a cleanup that fails the test
// if they differ once everything else is torn down.
func checkRootNetNSUnchanged(t *testing.T) {
	t.Helper()
	before := rootNetNSState(t)
	t.Cleanup(func() {
		after := rootNetNSState(t)
		for _, l := range after {
			if !slices.Contains(before, l) {
				t.Errorf("left in the test's netns: %s", l)
			}
		}
		for _, l := range before {
			if !slices.Contains(after, l) {
				t.Errorf("gone from the test's netns: %s", l)
			}
		}
	})
}

// rootNetNSState lists the links (name and type) and the iptables rules
// (filter and nat, IPv4 and IPv6) of the calling process's netns.
func rootNetNSState(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var state []string
	for _, l := range links {
		state = append(state, "link "+l.Attrs().Name+" "+l.Type())
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat"} {
			out, err := exec.Command(bin, "-w", "-t", table, "-S").Output()
			if err != nil {
				t.Fatalf("%s -t %s -S: %v", bin, table, err)
			}
			for _, r := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				state = append(state, bin+" "+table+" "+r)
			}
		}
	}
	return state
}
