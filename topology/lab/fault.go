package lab

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Faults say what a lab breaks, and where. The zero value breaks nothing:
// the nodes are joined by one veth pair, as a lab has always been built.
//
// A request is what travels from pod 1 to pod 2 (the direction
// `cnitrace trace` probes in the lab), a reply what travels back.
type Faults struct {
	// Wire puts the wire namespace and its delay line between the nodes
	// even when Network does nothing, to measure the delay line's own cost.
	// A non-zero Network implies it.
	Wire bool
	// Network delays and drops frames between the nodes' uplinks, in the
	// wire namespace (docs/lab.md draws it).
	Network Network
	// ForwardRequestLoss and ForwardReplyLoss drop that fraction of the
	// probes node 1 forwards in from its pod side (cni0; the rv+ veths when
	// routed: ICMP echo requests, TCP SYNs, UDP datagrams) or of the replies
	// it forwards out to it (echo replies, SYN-ACKs, RSTs, UDP datagrams),
	// with one iptables statistic rule per direction in a chain that its
	// FORWARD chain sends them to: toward the other node,
	// and on the routed layout between two pods of node 1 too (between
	// two pods on one bridge only when br_netfilter passes bridged frames
	// through iptables, as on most Kubernetes nodes).
	ForwardRequestLoss float64
	ForwardReplyLoss   float64
	// PodRequestLoss and PodReplyLoss drop that fraction of the probes
	// node 1's pod sends (its OUTPUT chain, before they reach its eth0:
	// echo requests, TCP SYNs, UDP datagrams) or of the replies it
	// receives (INPUT, after eth0: echo replies, SYN-ACKs, RSTs, UDP
	// datagrams), matched as the forward loss matches them, with one
	// iptables statistic rule per direction in a chain of the pod's
	// namespace that OUTPUT or INPUT sends them to.
	PodRequestLoss float64
	PodReplyLoss   float64
	// ForwardRules loads this many non-matching rules into node 1's FORWARD
	// chain, after the loss rules, as BloatForward does.
	ForwardRules int
	// DenyICMP drops every ICMP (and ICMPv6) echo request node 1 forwards
	// in from its pod side, as a NetworkPolicy that allows its pods only
	// TCP and UDP does: a DROP rule first in node 1's FORWARD chain (and
	// ip6tables' FORWARD). Like Calico's and Cilium's policy verdicts it
	// drops rather than rejects, so a ping times out and says nothing.
	DenyICMP bool
}

// Denials is what --deny accepts: the traffic a policy fault can deny.
var Denials = []string{"icmp"}

// SetDeny records one --deny value: "icmp" sets DenyICMP. It has the
// signature flag.Func wants.
func (f *Faults) SetDeny(s string) error {
	if s != "icmp" {
		return fmt.Errorf("cannot deny %q: want icmp (echo requests forwarded from node 1's pods are dropped)", s)
	}
	f.DenyICMP = true
	return nil
}

// Network is what the wire does to each direction of the traffic between
// the nodes: all of it (ARP, VXLAN), not only probes.
type Network struct {
	Request Impairment // frames from node 1 to node 2
	Reply   Impairment // frames from node 2 to node 1
}

// Impairment is a fixed delay and a random loss, what netem's
// `delay D loss P` would do (this kernel has no netem).
type Impairment struct {
	Delay time.Duration // added to every frame: 0 to MaxNetworkDelay
	Loss  float64       // fraction of frames dropped at random: 0 to 1
}

// MaxNetworkDelay is the longest delay the wire adds. The delay line holds
// at most 1024 frames per direction, so long delays only suit slow traffic.
const MaxNetworkDelay = time.Second

// Where a delay or a loss can act, as --delay and --loss name it.
var (
	delayPlaces = []string{"network", "network-request", "network-reply"}
	lossPlaces  = []string{"network", "network-request", "network-reply", "forward", "forward-request", "forward-reply", "pod", "pod-request", "pod-reply"}
)

// delayForms and lossForms describe the accepted syntax, for errors.
const (
	delayForms = "want WHERE=DURATION, WHERE one of network, network-request, network-reply, DURATION like 2ms, 500us or 0 (at most 1s)"
	lossForms  = "want WHERE=P, WHERE one of network, network-request, network-reply, forward, forward-request, forward-reply, pod, pod-request, pod-reply, P like 0.05 or 5%"
)

// needsWire reports whether f needs the wire namespace.
func (f Faults) needsWire() bool { return f.Wire || f.Network != Network{} }

// SetDelay records one delay written as on the command line,
// WHERE=DURATION (errors name the accepted forms, not s): "network=2ms" delays both directions of the network by
// 2 ms, "network-request=2ms" only frames from node 1 to node 2. A delay
// of 0 still builds the wire. It has the signature flag.Func wants.
func (f *Faults) SetDelay(s string) error {
	where, value, err := splitFault(s, delayPlaces, delayForms)
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 || d > MaxNetworkDelay {
		return fmt.Errorf("bad duration %q: %s", value, delayForms)
	}
	f.Wire = true
	if where != "network-reply" {
		f.Network.Request.Delay = d
	}
	if where != "network-request" {
		f.Network.Reply.Delay = d
	}
	return nil
}

// SetLoss records one loss written as on the command line, WHERE=P, with P
// a fraction (0.05) or a percentage (5%) (errors name the accepted forms): "network=0.05" drops 5% of the
// frames in each direction of the network, "forward-request=0.2" 20% of the
// probe requests node 1 forwards. It has the signature flag.Func wants.
func (f *Faults) SetLoss(s string) error {
	where, value, err := splitFault(s, lossPlaces, lossForms)
	if err != nil {
		return err
	}
	p, err := parseFraction(value)
	if err != nil {
		return fmt.Errorf("bad fraction %q: %s", value, lossForms)
	}
	switch where {
	case "network", "network-request", "network-reply":
		f.Wire = true
		if where != "network-reply" {
			f.Network.Request.Loss = p
		}
		if where != "network-request" {
			f.Network.Reply.Loss = p
		}
	case "forward", "forward-request", "forward-reply":
		if where != "forward-reply" {
			f.ForwardRequestLoss = p
		}
		if where != "forward-request" {
			f.ForwardReplyLoss = p
		}
	case "pod", "pod-request", "pod-reply":
		if where != "pod-reply" {
			f.PodRequestLoss = p
		}
		if where != "pod-request" {
			f.PodReplyLoss = p
		}
	}
	return nil
}

// splitFault splits WHERE=VALUE and checks WHERE is one of places.
func splitFault(s string, places []string, forms string) (where, value string, err error) {
	where, value, ok := strings.Cut(s, "=")
	if !ok || value == "" {
		return "", "", fmt.Errorf("%q is not WHERE=VALUE: %s", s, forms)
	}
	for _, p := range places {
		if where == p {
			return where, value, nil
		}
	}
	return "", "", fmt.Errorf("unknown place %q: %s", where, forms)
}

// parseFraction reads 0.05 or 5% as 0.05, refusing anything outside [0, 1].
func parseFraction(s string) (float64, error) {
	percent := strings.HasSuffix(s, "%")
	p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, err
	}
	if percent {
		p /= 100
	}
	if math.IsNaN(p) || p < 0 || p > 1 {
		return 0, fmt.Errorf("%s is not between 0 and 1 (0%% and 100%%)", s)
	}
	return p, nil
}

// Validate reports the first value of f out of range.
func (f Faults) Validate() error {
	for _, c := range []struct {
		what string
		imp  Impairment
	}{{"network-request", f.Network.Request}, {"network-reply", f.Network.Reply}} {
		if c.imp.Delay < 0 || c.imp.Delay > MaxNetworkDelay {
			return fmt.Errorf("%s delay %v: must be 0 to %v", c.what, c.imp.Delay, MaxNetworkDelay)
		}
		if !validFraction(c.imp.Loss) {
			return fmt.Errorf("%s loss %v: must be 0 to 1", c.what, c.imp.Loss)
		}
	}
	if !validFraction(f.ForwardRequestLoss) || !validFraction(f.ForwardReplyLoss) {
		return fmt.Errorf("forward loss %v/%v (request/reply): must be 0 to 1", f.ForwardRequestLoss, f.ForwardReplyLoss)
	}
	if !validFraction(f.PodRequestLoss) || !validFraction(f.PodReplyLoss) {
		return fmt.Errorf("pod loss %v/%v (request/reply): must be 0 to 1", f.PodRequestLoss, f.PodReplyLoss)
	}
	if f.ForwardRules < 0 || f.ForwardRules > MaxBloatRules {
		return fmt.Errorf("%d FORWARD rules: must be 0 to %d", f.ForwardRules, MaxBloatRules)
	}
	return nil
}

func validFraction(p float64) bool { return p >= 0 && p <= 1 } // false for NaN

// Flags renders f as the `cnitrace-lab up` flags that ask for it, shortest
// form first: "--delay network=2ms --loss forward-request=0.2 --bloat 20000".
// The zero Faults renders as no flags.
func (f Faults) Flags() []string {
	var out []string
	n := f.Network
	switch {
	case n.Request.Delay == n.Reply.Delay && (n.Request.Delay != 0 || f.Wire && n == Network{}):
		out = append(out, "--delay", "network="+formatDuration(n.Request.Delay))
	case n.Request.Delay != n.Reply.Delay:
		out = appendPair(out, "--delay", "network", formatDuration(n.Request.Delay), formatDuration(n.Reply.Delay))
	}
	out = appendPair(out, "--loss", "network", formatFraction(n.Request.Loss), formatFraction(n.Reply.Loss))
	out = appendPair(out, "--loss", "forward", formatFraction(f.ForwardRequestLoss), formatFraction(f.ForwardReplyLoss))
	out = appendPair(out, "--loss", "pod", formatFraction(f.PodRequestLoss), formatFraction(f.PodReplyLoss))
	if f.ForwardRules > 0 {
		out = append(out, "--bloat", strconv.Itoa(f.ForwardRules))
	}
	if f.DenyICMP {
		out = append(out, "--deny", "icmp")
	}
	return out
}

// appendPair appends flag PLACE=v for both directions when they agree,
// else PLACE-request=req and PLACE-reply=rep, leaving out a "0".
func appendPair(out []string, flag, place, req, rep string) []string {
	if req == rep {
		if req == "0" {
			return out
		}
		return append(out, flag, place+"="+req)
	}
	if req != "0" {
		out = append(out, flag, place+"-request="+req)
	}
	if rep != "0" {
		out = append(out, flag, place+"-reply="+rep)
	}
	return out
}

// formatDuration writes d in the largest unit that keeps it exact, in
// ASCII (time.Duration.String writes "µs").
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

func formatFraction(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
