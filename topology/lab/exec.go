package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxBloatRules is the most rules BloatForward loads: one per address of
// 10.255.0.0/16.
const MaxBloatRules = 1 << 16

// Command returns a command that runs name with args inside the lab
// namespace at nsPath (a Node's, Pod's, the Wire's or the External
// host's NSPath), through
// `nsenter --net=<nsPath> -- name args...` from util-linux. Only the
// network namespace changes; name is looked up in PATH by nsenter. For any
// other path, or without nsenter, the command's Err is set and Start, Run
// and Output return it.
func (l *Lab) Command(ctx context.Context, nsPath string, name string, args ...string) *exec.Cmd {
	nsenter, err := lookPath("nsenter", "util-linux")
	if err == nil && !l.owns(nsPath) {
		err = fmt.Errorf("run %s in %s: not a namespace of lab %s", name, nsPath, l.Name)
	}
	if nsenter == "" {
		nsenter = "nsenter"
	}
	cmd := exec.CommandContext(ctx, nsenter, append([]string{"--net=" + nsPath, "--", name}, args...)...)
	if err != nil {
		cmd.Err = err
	}
	return cmd
}

// owns reports whether path is one of the lab's namespaces.
func (l *Lab) owns(path string) bool {
	path = filepath.Clean(path)
	if l.External != nil && path == l.External.NSPath || l.Wire != nil && path == l.Wire.NSPath {
		return true
	}
	for _, n := range l.Nodes {
		if path == n.NSPath {
			return true
		}
		for _, p := range n.pods() {
			if p != nil && path == p.NSPath {
				return true
			}
		}
	}
	return false
}

// node returns node i, 1-based.
func (l *Lab) node(i int) (*Node, error) {
	if i < 1 || i > len(l.Nodes) {
		return nil, fmt.Errorf("lab %s has no node %d (nodes are 1 to %d)", l.Name, i, len(l.Nodes))
	}
	return l.Nodes[i-1], nil
}

// BloatForward appends rules rules that match no lab packet to the FORWARD
// chain of node (1-based), with one `iptables-restore --noflush` call, so
// every forwarded packet walks them: the kube-proxy-at-scale slowdown
// (design.md measured ~100 us per traversal for 20,000 rules). Each rule is
// `-s 10.255.X.Y/32 -d 10.255.X.Y/32 -j DROP`; rules is at most
// MaxBloatRules. ClearForward removes them.
func (l *Lab) BloatForward(ctx context.Context, node int, rules int) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	if rules < 0 || rules > MaxBloatRules {
		return fmt.Errorf("load %d FORWARD rules in %s: rules must be 0 to %d", rules, n.Name, MaxBloatRules)
	}
	restore, err := lookPath("iptables-restore", "iptables")
	if err != nil {
		return fmt.Errorf("load %d FORWARD rules in %s: %w", rules, n.Name, err)
	}
	cmd := l.Command(ctx, n.NSPath, restore, "-w", "--noflush")
	cmd.Stdin = bytes.NewReader(forwardRules(rules))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load %d FORWARD rules in %s: %w%s", rules, n.Name, err, QuoteOutput(out))
	}
	return nil
}

// ClearForward flushes the FORWARD chain of node (1-based), ip6tables'
// too (where Faults.DenyICMP puts its ICMPv6 rule), and removes the loss
// chains the forward loss faults jump to.
func (l *Lab) ClearForward(ctx context.Context, node int) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	restore, err := lookPath("iptables-restore", "iptables")
	if err != nil {
		return fmt.Errorf("clear FORWARD in %s: %w", n.Name, err)
	}
	cmd := l.Command(ctx, n.NSPath, restore, "-w", "--noflush")
	cmd.Stdin = strings.NewReader(clearForwardRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("clear FORWARD in %s: %w%s", n.Name, err, QuoteOutput(out))
	}
	return l.ip6tables(ctx, n.NSPath, n.Name, "-F", "FORWARD")
}

// The user chains of node 1's filter table holding the forward loss
// rules: FORWARD sends each probe of a direction there (see faultRules).
const (
	forwardRequestChain = "CNITRACE-FORWARD-REQUEST"
	forwardReplyChain   = "CNITRACE-FORWARD-REPLY"
)

// clearForwardRules is the iptables-restore input (for --noflush) that
// flushes FORWARD and deletes the loss chains: declaring a chain creates
// it or flushes it, so the deletes succeed whether or not it was there.
const clearForwardRules = "*filter\n" +
	":" + forwardRequestChain + " - [0:0]\n" +
	":" + forwardReplyChain + " - [0:0]\n" +
	"-F FORWARD\n" +
	"-X " + forwardRequestChain + "\n" +
	"-X " + forwardReplyChain + "\n" +
	"COMMIT\n"

// ip6tables runs ip6tables -w args in the lab namespace at nsPath (called
// name in errors).
func (l *Lab) ip6tables(ctx context.Context, nsPath, name string, args ...string) error {
	return l.xtables(ctx, "ip6tables", nsPath, name, args...)
}

func (l *Lab) xtables(ctx context.Context, prog, nsPath, name string, args ...string) error {
	bin, err := lookPath(prog, "iptables")
	if err != nil {
		return fmt.Errorf("%s %s in %s: %w", prog, strings.Join(args, " "), name, err)
	}
	if out, err := l.Command(ctx, nsPath, bin, append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s in %s: %w%s", prog, strings.Join(args, " "), name, err, QuoteOutput(out))
	}
	return nil
}

// forwardRules renders an iptables-restore input appending n rules to
// FORWARD in the filter table. It declares no chain, so the chain's policy
// and existing rules stay as they are under --noflush.
func forwardRules(n int) []byte {
	return faultRules(Faults{ForwardRules: n}, LayoutFlannel) // no loss rule: the layout does not matter
}

// faultRules renders the iptables-restore input (for --noflush) that
// appends f's FORWARD rules to node 1 of a lab of layout t: the loss
// rules first, then f.ForwardRules non-matching rules, each
// `-s 10.255.X.Y/32 -d 10.255.X.Y/32 -j DROP`.
//
// Each direction's loss is one statistic rule in a chain of its own, which
// the probes of that direction jump to from FORWARD: requests forwarded
// in from the pod side (cni0 or every rv+ veth) are ICMP echo requests,
// TCP SYNs and UDP datagrams; replies forwarded out to it (toward the
// other node, or on the routed layout toward a pod on the same node too)
// are echo replies, SYN-ACKs, RSTs and UDP datagrams. So the chain drops
// the asked fraction of whatever probe crosses it, whatever its protocol.
func faultRules(f Faults, t Layout) []byte {
	pods := t.wiring().podSide
	var b bytes.Buffer
	b.Grow(64 * (f.ForwardRules + 12))
	b.WriteString("*filter\n")
	if f.ForwardRequestLoss > 0 {
		b.WriteString(":" + forwardRequestChain + " - [0:0]\n")
	}
	if f.ForwardReplyLoss > 0 {
		b.WriteString(":" + forwardReplyChain + " - [0:0]\n")
	}
	if f.DenyICMP {
		b.WriteString(denyICMPRule(pods, "icmp --icmp-type echo-request"))
	}
	writeLossRule(&b, "forward-request", "FORWARD -i "+pods, forwardRequestChain, requestProbes, f.ForwardRequestLoss)
	writeLossRule(&b, "forward-reply", "FORWARD -o "+pods, forwardReplyChain, replyProbes, f.ForwardReplyLoss)
	for i := range f.ForwardRules {
		a := "10.255." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + "/32"
		b.WriteString("-A FORWARD -s " + a + " -d " + a + " -j DROP\n")
	}
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// DenyRuleComment is the comment of the rules that drop ICMP for
// Faults.DenyICMP: `iptables -L FORWARD -v` counts what they dropped.
const DenyRuleComment = "cnitrace deny icmp"

// denyICMPRule is the FORWARD rule dropping the echo requests (proto: the
// -p match) forwarded in from the pod side pods, as a NetworkPolicy
// denying ICMP to node 1's pods' egress does.
func denyICMPRule(pods, proto string) string {
	return fmt.Sprintf("-A FORWARD -i %s -p %s -m comment --comment %q -j DROP\n", pods, proto, DenyRuleComment)
}

// denyICMP6Rules renders the ip6tables-restore input (for --noflush) that
// drops the ICMPv6 echo requests node 1 forwards in from its pod side.
func denyICMP6Rules(t Layout) []byte {
	return []byte("*filter\n" + denyICMPRule(t.wiring().podSide, "ipv6-icmp --icmpv6-type echo-request") + "COMMIT\n")
}

// The matches of the probes of each direction, as cnitrace sends them
// (docs/probe.md) and as their targets answer: every loss fault, in
// FORWARD and in the pod, drops from these.
var (
	requestProbes = []string{"-p icmp --icmp-type echo-request", "-p tcp --tcp-flags SYN,ACK,RST SYN", "-p udp"}
	replyProbes   = []string{"-p icmp --icmp-type echo-reply", "-p tcp --tcp-flags SYN,ACK SYN,ACK", "-p tcp --tcp-flags RST RST", "-p udp"}
)

// writeLossRule writes the rules dropping the fraction p of the packets
// that from (a built-in chain and any match on it: "FORWARD -i cni0",
// "OUTPUT") sees matching one of probes: one rule in from per probe
// jumping to chain, and there one statistic rule commented with what (so
// `iptables -L -v` shows its counter, what it dropped, under that name).
// chain must be declared in the same input. It writes nothing when p is 0.
func writeLossRule(b *bytes.Buffer, what, from, chain string, probes []string, p float64) {
	if p <= 0 {
		return
	}
	for _, m := range probes {
		fmt.Fprintf(b, "-A %s %s -m comment --comment %q -j %s\n", from, m, "cnitrace "+what+" probes", chain)
	}
	fmt.Fprintf(b, "-A %s -m statistic --mode random --probability %s -m comment --comment %q -j DROP\n",
		chain, formatFraction(p), LossRuleComment(what))
}

// The user chains of the pod's filter table holding the pod loss rules:
// OUTPUT and INPUT send each probe of a direction there (see podRules).
const (
	podRequestChain = "CNITRACE-POD-REQUEST"
	podReplyChain   = "CNITRACE-POD-REPLY"
)

// podRules renders the iptables-restore input (for --noflush) that appends
// f's pod loss rules: the probes leaving the pod (OUTPUT: echo requests,
// SYNs, UDP datagrams) and the replies entering it (INPUT: echo replies,
// SYN-ACKs, RSTs, UDP datagrams), each direction's probes jumping to a
// chain of its own holding its one statistic rule, as the forward loss
// does in FORWARD.
func podRules(f Faults) []byte {
	var b bytes.Buffer
	b.WriteString("*filter\n")
	if f.PodRequestLoss > 0 {
		b.WriteString(":" + podRequestChain + " - [0:0]\n")
	}
	if f.PodReplyLoss > 0 {
		b.WriteString(":" + podReplyChain + " - [0:0]\n")
	}
	writeLossRule(&b, "pod-request", "OUTPUT", podRequestChain, requestProbes, f.PodRequestLoss)
	writeLossRule(&b, "pod-reply", "INPUT", podReplyChain, replyProbes, f.PodReplyLoss)
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// clearPodRules is the iptables-restore input (for --noflush) that
// flushes the pod's OUTPUT and INPUT and deletes the pod loss chains, as
// clearForwardRules does for FORWARD.
const clearPodRules = "*filter\n" +
	":" + podRequestChain + " - [0:0]\n" +
	":" + podReplyChain + " - [0:0]\n" +
	"-F OUTPUT\n" +
	"-F INPUT\n" +
	"-X " + podRequestChain + "\n" +
	"-X " + podReplyChain + "\n" +
	"COMMIT\n"

// LossRuleComment is the comment of the iptables rule that drops the
// forward-request, forward-reply, pod-request or pod-reply loss.
func LossRuleComment(what string) string { return "cnitrace " + what + " loss" }

// lookPath finds a program in PATH, then in the sbin directories a
// non-root PATH lacks, and names the Debian package when it is missing.
func lookPath(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err2 := exec.LookPath(filepath.Join(dir, name)); err2 == nil {
			return p, nil
		}
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s not found in PATH (install the Debian package %s)", name, pkg)
	}
	return "", fmt.Errorf("find %s: %w", name, err)
}

// QuoteOutput formats a failed command's output for an error message.
func QuoteOutput(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return ": " + strings.ReplaceAll(s, "\n", "; ")
}
