package lab_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedServiceAndExternal: Config.Service alone builds the
// Service as kube-proxy's iptables mode does (the default) with its
// backends, and a pod on either node reaches an endpoint through
// ServiceAddr's TCP port; with Config.External too, a pod reaches the
// external host, which sees node 1's ExternalGateway as the source
// (MASQUERADE next to kube-proxy's KUBE-POSTROUTING); Open finds the
// external host again; Close removes its namespace too.
func TestPrivilegedServiceAndExternal(t *testing.T) {
	labtest.Require(t)
	l, err := lab.Up(context.Background(), lab.Config{Service: true, External: true})
	if err != nil {
		t.Fatal(err)
	}
	name := l.Name
	defer func() {
		l.Close()
		labtest.CheckGone(t, name)
	}()
	if l.Service != lab.ServiceAddr || l.External == nil || l.External.Addr != lab.ExternalAddr {
		t.Fatalf("service %v, external %+v; want %v and a host at %v", l.Service, l.External, lab.ServiceAddr, lab.ExternalAddr)
	}
	if l.ServiceMode != lab.ServiceIPTables || !l.Backends {
		t.Errorf("service mode %q, backends %v; want the default, %s, and backends", l.ServiceMode, l.Backends, lab.ServiceIPTables)
	}
	p1 := l.Nodes[0].Pod
	ext := l.External
	// Two counting rules in the external host: what source it sees.
	for _, src := range []string{lab.ExternalGateway.String(), "10.244.0.0/16"} {
		if out, err := l.Command(t.Context(), ext.NSPath, "iptables", "-w", "-A", "INPUT", "-s", src, "-p", "icmp").CombinedOutput(); err != nil {
			t.Fatalf("iptables in %s: %v\n%s", ext.Name, err, out)
		}
	}
	http := netip.AddrPortFrom(l.Service, lab.ServicePorts[0].Port)
	for _, from := range []*lab.Pod{p1, l.Nodes[1].Sibling} { // kube-proxy's rules are on every node
		who, err := whoamiTCP(from.NS, http)
		if ep, perr := netip.ParseAddr(who); err != nil || perr != nil || !slices.Contains(l.ServiceEndpoints(), ep) {
			t.Errorf("TCP from %s to %s: answered %q (%v), want an endpoint of %v", from.Name, http, who, err, l.ServiceEndpoints())
		}
	}
	ping(t, l, p1.NSPath, ext.Addr)

	out, err := l.Command(t.Context(), ext.NSPath, "iptables", "-w", "-L", "INPUT", "-n", "-v", "-x").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -L in %s: %v\n%s", ext.Name, err, out)
	}
	gw, pods := counter(t, string(out), lab.ExternalGateway.String()), counter(t, string(out), "10.244.0.0/16")
	if gw < 3 || pods != 0 {
		t.Errorf("external host saw %d packets from %s and %d from the pod network, want >= 3 and 0 (masqueraded):\n%s", gw, lab.ExternalGateway, pods, out)
	}

	o, err := lab.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.External == nil || o.External.NSPath != l.External.NSPath {
		t.Errorf("Open: external %+v, want %s", o.External, l.External.NSPath)
	}
}

// counter returns the packet count of the iptables -L -v -x line that
// names src.
func counter(t *testing.T, listing, src string) int {
	t.Helper()
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && slices.Contains(f[1:], src) {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("packet count %q in %q: %v", f[0], line, err)
			}
			return n
		}
	}
	t.Fatalf("no rule with source %s in:\n%s", src, listing)
	return 0
}
