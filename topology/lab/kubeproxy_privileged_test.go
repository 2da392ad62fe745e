//go:build linux

package lab_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// tries is how many connections and queries go to the Service per check:
// with two endpoints at 1/2 each, one that never answers in 40 tries
// happens once in 2^39.
const tries = 40

// TestPrivilegedKubeProxyService: in each kube-proxy mode, on both
// layouts, the Service spreads TCP connections and DNS queries from node
// 1's pod over both endpoints, each answering itself; an endpoint reaching
// the Service reaches itself too (hairpin, masqueraded); ICMP to the
// ClusterIP is not translated; the rules are there by kube-proxy's names;
// every DNS server runs in its pod. Cleanup (labtest) checks that no
// process, pid file or namespace is left.
func TestPrivilegedKubeProxyService(t *testing.T) {
	for _, mode := range []lab.ServiceMode{lab.ServiceIPTables, lab.ServiceNFTables} {
		for _, lay := range lab.Layouts {
			t.Run(string(mode)+"/"+string(lay), func(t *testing.T) {
				l := labtest.NewWith(t, lab.Config{Layout: lay, Service: true, ServiceMode: mode})
				if l.ServiceMode != mode || !l.Backends {
					t.Fatalf("lab has service mode %q, backends %v; want %s and backends", l.ServiceMode, l.Backends, mode)
				}
				eps := l.ServiceEndpoints()
				if n2 := l.Nodes[1]; len(eps) != 2 || eps[0] != n2.Pod.Addr || eps[1] != n2.Sibling.Addr {
					t.Fatalf("endpoints %v, want node 2's pod and sibling", eps)
				}
				checkProcessesInPods(t, l, 4)
				pod1 := l.Nodes[0].Pod.NS
				checkSpread(t, "TCP to the ClusterIP", spread(t, pod1, netip.AddrPortFrom(l.Service, 80), tries), eps)
				checkSpread(t, "DNS to the ClusterIP", spreadDNS(t, pod1, netip.AddrPortFrom(l.Service, 53), tries), eps)
				checkSpread(t, "TCP to the ClusterIP from an endpoint", spread(t, l.Nodes[1].Pod.NS, netip.AddrPortFrom(l.Service, 80), tries), eps)
				checkICMPNotTranslated(t, l)
				checkRulesByName(t, l, mode)
			})
		}
	}
}

// checkICMPNotTranslated pings the ClusterIP from node 1's pod: no reply
// comes from an endpoint, and node 1's conntrack holds no echo to the
// ClusterIP with its reply from anywhere else (no DNAT).
func checkICMPNotTranslated(t *testing.T, l *lab.Lab) {
	t.Helper()
	out, err := l.Command(t.Context(), l.Nodes[0].Pod.NSPath, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", l.Service.String()).CombinedOutput()
	if err == nil {
		t.Errorf("ping %s succeeded: ICMP must not be translated\n%s", l.Service, out)
	}
	for _, ep := range l.ServiceEndpoints() {
		if strings.Contains(string(out), "from "+ep.String()+":") {
			t.Errorf("endpoint %s answered a ping to the ClusterIP:\n%s", ep, out)
		}
	}
	t.Logf("ping %s: %s", l.Service, lastLine(string(out)))
	h := handle(t, l.Nodes[0].NS)
	flows, err := topology.RetryDump(func() ([]*netlink.ConntrackFlow, error) {
		return h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		dst, _ := netip.AddrFromSlice(f.Forward.DstIP)
		src, _ := netip.AddrFromSlice(f.Reverse.SrcIP)
		if f.Forward.Protocol == unix.IPPROTO_ICMP && dst == l.Service && src != l.Service {
			t.Errorf("conntrack in %s: ICMP to %s answered by %s: translated", l.Nodes[0].Name, dst, src)
		}
	}
}

// checkRulesByName checks node 1 shows the Service as kube-proxy's mode
// names it: iptables-save its KUBE-SERVICES, KUBE-SVC-* and KUBE-SEP-*
// chains; nft its table ip kube-proxy with the service chains.
func checkRulesByName(t *testing.T, l *lab.Lab, mode lab.ServiceMode) {
	t.Helper()
	n1 := l.Nodes[0]
	var out []byte
	var err error
	var want []string
	if mode == lab.ServiceIPTables {
		out, err = l.Command(t.Context(), n1.NSPath, "iptables-save", "-t", "nat").CombinedOutput()
		want = []string{"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
			"-j KUBE-SVC-", "-j KUBE-SEP-", "--probability 0.5", "-j DNAT --to-destination 10.244.2.3:8080", "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"}
	} else {
		out, err = l.Command(t.Context(), n1.NSPath, "nft", "list", "table", "ip", lab.NFTablesTable).CombinedOutput()
		want = []string{"table ip kube-proxy", "map service-ips", "chain service-", "numgen random mod 2 vmap",
			"dnat to 10.244.2.3:8080", "masquerade fully-random"}
	}
	if err != nil {
		t.Fatalf("list the rules of %s: %v\n%s", n1.Name, err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("%s mode: the rules of %s lack %q:\n%s", mode, n1.Name, w, out)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
