package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The chain names are kube-proxy's own: the same hash of the same string.
// The wants are from kube-proxy's TestOverallIPTablesRules and
// TestOverallNFTablesRules (pkg/proxy/{iptables,nftables}/proxier_test.go),
// for Service ns1/svc1 port p80 (TCP) with endpoint 10.180.0.1:80.
func TestChainNamesAreKubeProxys(t *testing.T) {
	ep := netip.MustParseAddrPort("10.180.0.1:80")
	for _, tc := range []struct{ got, want string }{
		{iptablesSvcChain("ns1/svc1:p80", "tcp"), "KUBE-SVC-XPGD46QRK7WJZT7O"},
		{iptablesSepChain("ns1/svc1:p80", "tcp", ep.String()), "KUBE-SEP-SXIVWICOYRO3J4NJ"},
		{nftServiceChain("ns1", "svc1", "tcp", "p80"), "service-ULMVA6XW-ns1/svc1/tcp/p80"},
		{nftEndpointChain("ns1", "svc1", "tcp", "p80", ep), "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"},
	} {
		if tc.got != tc.want {
			t.Errorf("got chain %s, want %s", tc.got, tc.want)
		}
	}
	// kube-system/kube-dns:dns over UDP: the chain every cluster has.
	if got := iptablesSvcChain("kube-system/kube-dns:dns", "udp"); got != "KUBE-SVC-TCOU7JCQXEZGVUNU" {
		t.Errorf("kube-dns's chain is %s, want KUBE-SVC-TCOU7JCQXEZGVUNU", got)
	}
}

var (
	testVIP = netip.MustParseAddr("10.96.0.10")
	testEPs = []netip.Addr{netip.MustParseAddr("10.244.2.2"), netip.MustParseAddr("10.244.2.3")}
)

func TestIPTablesServiceRules(t *testing.T) {
	rules := string(iptablesServiceRules(testVIP, testEPs))
	lines := strings.Split(strings.TrimSpace(rules), "\n")
	if lines[0] != "*nat" || lines[len(lines)-1] != "COMMIT" {
		t.Fatalf("not one nat table transaction:\n%s", rules)
	}
	svc := iptablesSvcChain("default/lab:http", "tcp")
	sep1 := iptablesSepChain("default/lab:http", "tcp", "10.244.2.2:8080")
	sep2 := iptablesSepChain("default/lab:http", "tcp", "10.244.2.3:8080")
	dns := iptablesSvcChain("default/lab:dns", "udp")
	want := []string{
		":" + svc + " - [0:0]",
		`-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`,
		`-A KUBE-SERVICES -m comment --comment "default/lab:http cluster IP" -p tcp -m tcp -d 10.96.0.10 --dport 80 -j ` + svc,
		`-A KUBE-SERVICES -m comment --comment "default/lab:dns cluster IP" -p udp -m udp -d 10.96.0.10 --dport 53 -j ` + dns,
		"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
		"-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
		`-A ` + svc + ` -m comment --comment "default/lab:http cluster IP" -p tcp -m tcp -d 10.96.0.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`,
		`-A ` + svc + ` -m comment --comment "default/lab:http -> 10.244.2.2:8080" -m statistic --mode random --probability 0.5000000000 -j ` + sep1,
		`-A ` + svc + ` -m comment --comment "default/lab:http -> 10.244.2.3:8080" -j ` + sep2,
		"-A " + sep1 + " -m comment --comment default/lab:http -s 10.244.2.2 -j KUBE-MARK-MASQ",
		"-A " + sep1 + " -m comment --comment default/lab:http -p tcp -m tcp -j DNAT --to-destination 10.244.2.2:8080",
		"-A " + sep2 + " -m comment --comment default/lab:http -p tcp -m tcp -j DNAT --to-destination 10.244.2.3:8080",
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("no line %q in:\n%s", w, rules)
		}
	}
	if strings.Contains(rules, "icmp") {
		t.Errorf("the rules match ICMP, which kube-proxy never translates:\n%s", rules)
	}
	if n := strings.Count(rules, "-j DNAT"); n != 4 {
		t.Errorf("%d DNAT rules, want 4 (2 ports x 2 endpoints):\n%s", n, rules)
	}
}

func TestNFTablesServiceRules(t *testing.T) {
	rules := string(nftablesServiceRules(testVIP, testEPs))
	lines := strings.Split(strings.TrimSpace(rules), "\n")
	svc := "service-" + hashBase32("default/lab/tcp/http")[:8] + "-default/lab/tcp/http"
	ep1 := nftEndpointChain("default", "lab", "tcp", "http", netip.MustParseAddrPort("10.244.2.2:8080"))
	ep2 := nftEndpointChain("default", "lab", "tcp", "http", netip.MustParseAddrPort("10.244.2.3:8080"))
	want := []string{
		`add table ip kube-proxy { comment "rules for kube-proxy" ; }`,
		"add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
		"add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips",
		"add rule ip kube-proxy " + svc + " ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
		"add rule ip kube-proxy " + svc + " numgen random mod 2 vmap { 0 : goto " + ep1 + " , 1 : goto " + ep2 + " }",
		"add rule ip kube-proxy " + ep1 + " ip saddr 10.244.2.2 jump mark-for-masquerade",
		"add rule ip kube-proxy " + ep1 + " meta l4proto tcp dnat to 10.244.2.2:8080",
		"add element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 : goto " + svc + " }",
		"add element ip kube-proxy cluster-ips { 10.96.0.10 }",
		"add rule ip kube-proxy masquerading masquerade fully-random",
		`add rule ip kube-proxy cluster-ips-check ip daddr { 10.96.0.0/12 } drop comment "Drop traffic to unallocated ClusterIPs"`,
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("no line %q in:\n%s", w, rules)
		}
	}
	if n := strings.Count(rules, " dnat to "); n != 4 {
		t.Errorf("%d dnat rules, want 4 (2 ports x 2 endpoints):\n%s", n, rules)
	}
}

func TestParseServiceMode(t *testing.T) {
	for _, s := range []string{"iptables", "nftables"} {
		if m, err := ParseServiceMode(s); err != nil || string(m) != s {
			t.Errorf("ParseServiceMode(%q) = %q, %v", s, m, err)
		}
	}
	// dnat, the lab's old every-protocol DNAT, is gone: no kube-proxy
	// builds it.
	for _, s := range []string{"ipvs", "dnat"} {
		if _, err := ParseServiceMode(s); err == nil || !strings.Contains(err.Error(), `unknown service mode "`+s+`" (want iptables, nftables)`) {
			t.Errorf("ParseServiceMode(%s) = %v, want the modes named", s, err)
		}
	}
	if got := ServiceMode("").orDefault(); got != ServiceIPTables {
		t.Errorf("the default service mode is %q, want %q", got, ServiceIPTables)
	}
}

func TestDenyICMP(t *testing.T) {
	var f Faults
	if err := f.SetDeny("tcp"); err == nil || !strings.Contains(err.Error(), "want icmp") {
		t.Errorf("SetDeny(tcp) = %v, want an error naming icmp", err)
	}
	if err := f.SetDeny("icmp"); err != nil || !f.DenyICMP {
		t.Fatalf("SetDeny(icmp) = %v, DenyICMP %v", err, f.DenyICMP)
	}
	if got := strings.Join(f.Flags(), " "); got != "--deny icmp" {
		t.Errorf("Flags() = %q, want --deny icmp", got)
	}
	for _, lay := range Layouts {
		pods := lay.wiring().podSide
		rules := string(faultRules(Faults{DenyICMP: true, ForwardRequestLoss: 0.5}, lay))
		deny := `-A FORWARD -i ` + pods + ` -p icmp --icmp-type echo-request -m comment --comment "cnitrace deny icmp" -j DROP`
		if i := strings.Index(rules, deny); i < 0 || i > strings.Index(rules, "statistic") {
			t.Errorf("%s: the deny rule is missing or after the loss rule:\n%s", lay, rules)
		}
		if v6 := string(denyICMP6Rules(lay)); !strings.Contains(v6, "-i "+pods+" -p ipv6-icmp --icmpv6-type echo-request") {
			t.Errorf("%s: ICMPv6 deny rules:\n%s", lay, v6)
		}
	}
}

func TestDNSMasqArgs(t *testing.T) {
	p := &Pod{Name: "x-n2-pod", Addr: netip.MustParseAddr("10.244.2.2"), Addr6: netip.MustParseAddr("fd00:10:244:2::2")}
	args := dnsmasqArgs("x", p)
	for _, want := range []string{
		"--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=10.244.2.2,fd00:10:244:2::2",
		"--auth-zone=cluster.local",
		"--host-record=whoami.cluster.local,10.244.2.2,fd00:10:244:2::2",
		"--pid-file=/run/cnitrace/x/dnsmasq.x-n2-pod.pid",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("dnsmasq args %q lack %q", args, want)
		}
	}
}
