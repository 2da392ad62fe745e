package lab

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file renders the lab's Service as kube-proxy would write it for a
// ClusterIP Service with ServicePorts and two endpoints: the rules, the
// chain names (the same hashes of the same strings) and their comments,
// left out only what a ClusterIP Service with endpoints never reaches
// (NodePorts, external and load-balancer IPs, session affinity, the
// filter table's chains; docs/lab.md lists them).

// servicePortName is kube-proxy's ServicePortName.String():
// namespace/name:port.
func servicePortName(p ServicePort) string {
	return ServiceNamespace + "/" + ServiceName + ":" + p.Name
}

// hashBase32 is the base32 of the SHA-256 of s, the way kube-proxy makes
// chain names unique and short.
func hashBase32(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])
}

// iptablesSvcChain is kube-proxy's servicePortChainName: KUBE-SVC- and 16
// characters of the hash of the service port name and the protocol.
func iptablesSvcChain(spn, proto string) string { return "KUBE-SVC-" + hashBase32(spn + proto)[:16] }

// iptablesSepChain is kube-proxy's servicePortEndpointChainName, for the
// endpoint written as ip:port.
func iptablesSepChain(spn, proto, endpoint string) string {
	return "KUBE-SEP-" + hashBase32(spn + proto + endpoint)[:16]
}

// nftServiceChain is kube-proxy's nftables service chain:
// service-<hash>-namespace/name/protocol/port.
func nftServiceChain(ns, name, proto, port string) string {
	base := ns + "/" + name + "/" + proto + "/" + port
	return "service-" + hashBase32(base)[:8] + "-" + base
}

// nftEndpointChain is kube-proxy's nftables endpoint chain:
// endpoint-<hash>-namespace/name/protocol/port__ip/targetport.
func nftEndpointChain(ns, name, proto, port string, ep netip.AddrPort) string {
	base := ns + "/" + name + "/" + proto + "/" + port + "__" + ep.Addr().String() + "/" + strconv.Itoa(int(ep.Port()))
	return "endpoint-" + hashBase32(base)[:8] + "-" + base
}

// probability is what kube-proxy's statistic match gets for the i-th of n
// endpoints (0-based): 1/(n-i), written with ten decimals, so each of n
// endpoints gets 1/n of the new connections.
func probability(i, n int) string { return fmt.Sprintf("%0.10f", 1/float64(n-i)) }

// iptablesServiceRules renders the iptables-restore input (for --noflush)
// of kube-proxy's iptables mode for the Service at vip with endpoints eps:
// the nat table's KUBE-SERVICES (from PREROUTING and OUTPUT),
// KUBE-SVC-* per port, KUBE-SEP-* per endpoint and port, KUBE-MARK-MASQ
// (mark 0x4000) and KUBE-POSTROUTING, which masquerades what is marked:
// traffic from outside ClusterCIDR, and an endpoint's own traffic hairpinned
// back to it.
func iptablesServiceRules(vip netip.Addr, eps []netip.Addr) []byte {
	var chains, rules strings.Builder
	chains.WriteString("*nat\n")
	for _, c := range []string{"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"} {
		chains.WriteString(":" + c + " - [0:0]\n")
	}
	// kube-proxy prepends its jumps to the built-in chains.
	rules.WriteString(`-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
	rules.WriteString(`-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
	rules.WriteString(`-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING` + "\n")
	for _, p := range ServicePorts {
		spn := servicePortName(p)
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -m comment --comment %q -p %s -m %s -d %s --dport %d -j %s\n",
			spn+" cluster IP", p.Protocol, p.Protocol, vip, p.Port, iptablesSvcChain(spn, p.Protocol))
	}
	rules.WriteString(`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS` + "\n")
	rules.WriteString("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n")
	rules.WriteString("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n")
	rules.WriteString("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n")
	rules.WriteString(`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully` + "\n")
	for _, p := range ServicePorts {
		spn := servicePortName(p)
		svc := iptablesSvcChain(spn, p.Protocol)
		chains.WriteString(":" + svc + " - [0:0]\n")
		fmt.Fprintf(&rules, "-A %s -m comment --comment %q -p %s -m %s -d %s --dport %d ! -s %s -j KUBE-MARK-MASQ\n",
			svc, spn+" cluster IP", p.Protocol, p.Protocol, vip, p.Port, ClusterCIDR)
		for i, ep := range eps {
			dst := netip.AddrPortFrom(ep, p.TargetPort).String()
			sep := iptablesSepChain(spn, p.Protocol, dst)
			chains.WriteString(":" + sep + " - [0:0]\n")
			stat := ""
			if i < len(eps)-1 {
				stat = " -m statistic --mode random --probability " + probability(i, len(eps))
			}
			fmt.Fprintf(&rules, "-A %s -m comment --comment %q%s -j %s\n", svc, spn+" -> "+dst, stat, sep)
			fmt.Fprintf(&rules, "-A %s -m comment --comment %s -s %s -j KUBE-MARK-MASQ\n", sep, spn, ep)
			fmt.Fprintf(&rules, "-A %s -m comment --comment %s -p %s -m %s -j DNAT --to-destination %s\n", sep, spn, p.Protocol, p.Protocol, dst)
		}
	}
	return []byte(chains.String() + rules.String() + "COMMIT\n")
}

// NFTablesTable is the table kube-proxy's nftables mode keeps everything
// in: `nft list table ip kube-proxy` in a node shows the lab's Service.
const NFTablesTable = "kube-proxy"

// nftablesServiceRules renders the `nft -f` input of kube-proxy's nftables
// mode for the Service at vip with endpoints eps: table ip kube-proxy, its
// service-ips verdict map from (daddr . l4proto . dport) to a service
// chain, `numgen random mod N vmap` from there to the endpoint chains,
// which mark hairpinned traffic and DNAT, the masquerading chain, and the
// filter chains that reject traffic to a ClusterIP no map entry took (any
// other port or protocol, ICMP included) and drop traffic to an unallocated
// one.
func nftablesServiceRules(vip netip.Addr, eps []netip.Addr) []byte {
	var b strings.Builder
	add := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	t := "ip " + NFTablesTable
	add(`add table %s { comment "rules for kube-proxy" ; }`, t)
	add(`add set %s cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`, t)
	add(`add map %s no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`, t)
	add(`add map %s service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`, t)
	add(`add chain %s cluster-ips-check`, t)
	add(`add chain %s filter-forward { type filter hook forward priority 0 ; }`, t)
	add(`add chain %s filter-input { type filter hook input priority 0 ; }`, t)
	add(`add chain %s filter-output { type filter hook output priority 0 ; }`, t)
	add(`add chain %s mark-for-masquerade`, t)
	add(`add chain %s masquerading`, t)
	add(`add chain %s nat-output { type nat hook output priority -100 ; }`, t)
	add(`add chain %s nat-postrouting { type nat hook postrouting priority 100 ; }`, t)
	add(`add chain %s nat-prerouting { type nat hook prerouting priority -100 ; }`, t)
	add(`add chain %s reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`, t)
	add(`add chain %s services`, t)
	add(`add chain %s service-endpoints-check`, t)
	add(`add rule %s cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`, t)
	add(`add rule %s cluster-ips-check ip daddr { %s } drop comment "Drop traffic to unallocated ClusterIPs"`, t, ServiceCIDR)
	add(`add rule %s filter-forward ct state new jump service-endpoints-check`, t)
	add(`add rule %s filter-forward ct state new jump cluster-ips-check`, t)
	add(`add rule %s filter-input ct state new jump service-endpoints-check`, t)
	add(`add rule %s filter-output ct state new jump service-endpoints-check`, t)
	add(`add rule %s filter-output ct state new jump cluster-ips-check`, t)
	add(`add rule %s mark-for-masquerade mark set mark or 0x4000`, t)
	add(`add rule %s masquerading mark and 0x4000 == 0 return`, t)
	add(`add rule %s masquerading mark set mark xor 0x4000`, t)
	add(`add rule %s masquerading masquerade fully-random`, t)
	add(`add rule %s nat-output jump services`, t)
	add(`add rule %s nat-postrouting jump masquerading`, t)
	add(`add rule %s nat-prerouting jump services`, t)
	add(`add rule %s reject-chain reject`, t)
	add(`add rule %s services ip daddr . meta l4proto . th dport vmap @service-ips`, t)
	add(`add rule %s service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`, t)
	for _, p := range ServicePorts {
		svc := nftServiceChain(ServiceNamespace, ServiceName, p.Protocol, p.Name)
		add(`add chain %s %s`, t, svc)
		add(`add rule %s %s ip daddr %s ip saddr != %s jump mark-for-masquerade`, t, svc, vip, ClusterCIDR)
		var vmap []string
		for i, ep := range eps {
			dst := netip.AddrPortFrom(ep, p.TargetPort)
			epc := nftEndpointChain(ServiceNamespace, ServiceName, p.Protocol, p.Name, dst)
			vmap = append(vmap, fmt.Sprintf("%d : goto %s", i, epc))
			add(`add chain %s %s`, t, epc)
			add(`add rule %s %s ip saddr %s jump mark-for-masquerade`, t, epc, ep)
			add(`add rule %s %s meta l4proto %s dnat to %s`, t, epc, p.Protocol, dst)
		}
		add(`add rule %s %s numgen random mod %d vmap { %s }`, t, svc, len(eps), strings.Join(vmap, " , "))
		add(`add element %s service-ips { %s . %s . %d : goto %s }`, t, vip, p.Protocol, p.Port, svc)
	}
	add(`add element %s cluster-ips { %s }`, t, vip)
	return []byte(b.String())
}
