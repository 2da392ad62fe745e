//go:build linux

package lab_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

func TestPrivilegedRoutedPodToPod(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted})
	if l.Layout != lab.LayoutRouted {
		t.Fatalf("lab layout = %q, want %q", l.Layout, lab.LayoutRouted)
	}
	for _, n := range l.Nodes {
		checkRoutedNode(t, n)
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	h1 := handle(t, n1.NS)
	tx := linkStats(t, h1, lab.RoutedVXLANName).TxPackets
	ping(t, l, n1.Pod.NSPath, n2.Pod.Addr)
	ping(t, l, n2.Pod.NSPath, n1.Pod.Addr)
	ping(t, l, n1.Pod.NSPath, n1.Sibling.Addr) // same node: routed through the node, not bridged
	if got := linkStats(t, h1, lab.RoutedVXLANName).TxPackets - tx; got < 3 {
		t.Errorf("%s in %s sent %d packets during the pings, want >= 3", lab.RoutedVXLANName, n1.Name, got)
	}

	o, err := lab.Open(l.Name)
	if err != nil {
		t.Fatalf("open lab %s: %v", l.Name, err)
	}
	defer o.Close()
	if o.Layout != lab.LayoutRouted {
		t.Errorf("Open: layout = %q, want %q", o.Layout, lab.LayoutRouted)
	}
	for i, n := range o.Nodes {
		if got, want := n.Pod.HostVeth, l.Nodes[i].Pod.HostVeth; got != want {
			t.Errorf("Open: node %d host veth = %q, want %q", i+1, got, want)
		}
		if got, want := n.Sibling.HostVeth, l.Nodes[i].Sibling.HostVeth; got != want || got == n.Pod.HostVeth {
			t.Errorf("Open: node %d sibling's host veth = %q, want %q (pod's is %q)", i+1, got, want, n.Pod.HostVeth)
		}
	}
}

// checkRoutedNode checks n is wired as the routed layout says: no
// bridge, a host veth without master or IPv4 address but with proxy ARP, a /32
// route to the pod through it, and the overlay on UDP 4789.
func checkRoutedNode(t *testing.T, n *lab.Node) {
	t.Helper()
	h := handle(t, n.NS)
	if _, err := h.LinkByName(lab.BridgeName); err == nil {
		t.Errorf("%s has a bridge %s, want none", n.Name, lab.BridgeName)
	}
	if !strings.HasPrefix(n.Pod.HostVeth, lab.RoutedVethPrefix) {
		t.Errorf("host veth %q in %s, want prefix %s", n.Pod.HostVeth, n.Name, lab.RoutedVethPrefix)
	}
	veth, err := h.LinkByName(n.Pod.HostVeth)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", n.Pod.HostVeth, n.Name, err)
	}
	if veth.Attrs().MasterIndex != 0 {
		t.Errorf("%s in %s has master %d, want none", n.Pod.HostVeth, n.Name, veth.Attrs().MasterIndex)
	}
	if addrs, err := h.AddrList(veth, netlink.FAMILY_V4); err != nil || len(addrs) != 0 {
		t.Errorf("%s in %s has IPv4 addresses %v (%v), want none", n.Pod.HostVeth, n.Name, addrs, err)
	}
	routes, err := h.RouteGet(n.Pod.Addr.AsSlice())
	if err != nil || len(routes) != 1 || routes[0].LinkIndex != veth.Attrs().Index {
		t.Errorf("route to %s in %s = %v (%v), want dev %s", n.Pod.Addr, n.Name, routes, err, n.Pod.HostVeth)
	}
	var proxyARP []byte
	err = n.NS.Do(func() (err error) {
		proxyARP, err = os.ReadFile("/proc/sys/net/ipv4/conf/" + n.Pod.HostVeth + "/proxy_arp")
		return err
	})
	if err != nil || strings.TrimSpace(string(proxyARP)) != "1" {
		t.Errorf("proxy_arp of %s in %s = %q (%v), want 1", n.Pod.HostVeth, n.Name, proxyARP, err)
	}
	link, err := h.LinkByName(lab.RoutedVXLANName)
	if err != nil {
		t.Fatalf("look up %s in %s: %v", lab.RoutedVXLANName, n.Name, err)
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok || vx.Port != lab.RoutedVXLANPort || vx.VxlanId != lab.RoutedVNI {
		t.Errorf("%s in %s = %+v, want vxlan id %d port %d", lab.RoutedVXLANName, n.Name, link, lab.RoutedVNI, lab.RoutedVXLANPort)
	}
}

// TestPrivilegedRoutedRewire puts the wire between the nodes of a routed
// lab and takes it out again: the overlay is rebuilt each time, under the
// routed layout's names.
func TestPrivilegedRoutedRewire(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p1, p2 := l.Nodes[0].Pod, l.Nodes[1].Pod
	for _, f := range []lab.Faults{{Wire: true}, {}} {
		if err := l.SetFaults(ctx, f); err != nil {
			t.Fatalf("set faults %+v: %v", f, err)
		}
		ping(t, l, p1.NSPath, p2.Addr)
	}
}

// TestPrivilegedRoutedUpFailureAtEveryStep fails Up of a routed lab (with
// a wire and a forward fault, so every step does something) before each
// step in turn, and checks nothing is left behind.
func TestPrivilegedRoutedUpFailureAtEveryStep(t *testing.T) {
	labtest.Require(t)
	self := labtest.Self(t)
	cfg := lab.Config{Layout: lab.LayoutRouted, Faults: lab.Faults{Wire: true, ForwardRequestLoss: 0.1}}
	var steps []string
	l, err := lab.UpFailingAt(t.Context(), cfg, func(s string) error { steps = append(steps, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected failure")
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			name := uniqueName(t, "cnitrace-rstep-")
			t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
			cfg := cfg
			cfg.Name = name
			l, err := lab.UpFailingAt(t.Context(), cfg, func(s string) error {
				if s == step {
					return injected
				}
				return nil
			})
			if !errors.Is(err, injected) {
				l.Close()
				t.Fatalf("Up: %v, want the injected failure", err)
			}
			labtest.CheckGone(t, name)
			labtest.CheckThreads(t, self)
		})
	}
}
