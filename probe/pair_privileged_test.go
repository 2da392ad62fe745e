//go:build linux

package probe

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// nsPair is two throw-away namespaces joined by a veth pair: a (addrA)
// probes, b (addrB) serves. Nothing else is reachable from either.
type nsPair struct {
	a, b         *topology.NetNS
	addrA, addrB netip.Addr
	v6           bool
}

// newPair builds an nsPair for t, IPv4 (10.231.0.1 and .2/24) or IPv6
// (fdc0:7::1 and ::2/64, NODAD), with static neighbours, both veths
// operationally up and one answered ping from a to b (see newV6Pair for
// why). labtest.NetNS skips unless root (fails when CI=true) and removes
// everything in t's cleanup.
func newPair(t *testing.T, v6 bool) *nsPair {
	t.Helper()
	p := &nsPair{a: labtest.NetNS(t, "pa"), b: labtest.NetNS(t, "pb"), v6: v6,
		addrA: netip.MustParseAddr("10.231.0.1"), addrB: netip.MustParseAddr("10.231.0.2")}
	bits, family := 24, unix.AF_INET
	if v6 {
		p.addrA, p.addrB, bits, family = netip.MustParseAddr("fdc0:7::1"), netip.MustParseAddr("fdc0:7::2"), 64, unix.AF_INET6
	}
	nlA, nlB := netlinkHandle(t, p.a), netlinkHandle(t, p.b)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pa0"}, PeerName: "pb0", PeerNamespace: netlink.NsFd(p.b.Fd())}
	if err := nlA.LinkAdd(veth); err != nil {
		t.Fatalf("add veth pa0/pb0: %v", err)
	}
	up := func(h *netlink.Handle, name string, addr netip.Addr) netlink.Link {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("find %s: %v", name, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", name, err)
		}
		ipn := &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(bits, addr.BitLen())}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatalf("add %s to %s: %v", addr, name, err)
		}
		return l
	}
	la, lb := up(nlA, "pa0", p.addrA), up(nlB, "pb0", p.addrB)
	waitOperUp(t, nlA, "pa0")
	waitOperUp(t, nlB, "pb0")
	neigh := func(h *netlink.Handle, l netlink.Link, ip netip.Addr, mac net.HardwareAddr) {
		n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
		if err := h.NeighAdd(n); err != nil {
			t.Fatalf("add neighbour %s: %v", ip, err)
		}
	}
	neigh(nlA, la, p.addrB, lb.Attrs().HardwareAddr)
	neigh(nlB, lb, p.addrA, la.Attrs().HardwareAddr)
	p.warmUp(t)
	return p
}

// warmUp pings b from a until one probe is answered, at most 10 times.
func (p *nsPair) warmUp(t *testing.T) {
	t.Helper()
	conn, err := ListenFor(p.a, p.addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 10 {
		res, err := Run(context.Background(), conn, Config{Target: p.addrB, Count: 1, Timeout: 200 * time.Millisecond, Size: 56})
		if err != nil {
			t.Fatalf("warm up: %v", err)
		}
		if res.Probes[0].Answered() {
			return
		}
	}
	t.Fatalf("warm up: no answer from %s in 10 tries", p.addrB)
}

// in runs a command in ns, skipping the test when the command is not
// installed.
func in(t *testing.T, ns *topology.NetNS, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(args[0]); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if out, err := exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// iptablesIn is in with iptables, or ip6tables for an IPv6 pair.
func (p *nsPair) iptablesIn(t *testing.T, ns *topology.NetNS, args ...string) {
	t.Helper()
	cmd := "iptables"
	if p.v6 {
		cmd = "ip6tables"
	}
	in(t, ns, append([]string{cmd, "-w"}, args...)...)
}

// checkAnswered checks every probe of res: answered by kind from the
// target, in (0, timeout), with both kernel stamps in order before the
// answer (checkStamps).
func checkAnswered(t *testing.T, res *Result, kind Reply, from netip.Addr, timeout time.Duration) {
	t.Helper()
	if len(res.Probes) == 0 {
		t.Fatal("no probes")
	}
	checkStamps(t, res)
	for _, p := range res.Probes {
		if p.Reply != kind || p.ReplyFrom != from {
			t.Errorf("probe %d: reply %v from %v, want %v from %v", p.Seq, p.Reply, p.ReplyFrom, kind, from)
		}
		if rtt := p.RTT(); rtt <= 0 || rtt >= timeout {
			t.Errorf("probe %d: RTT %v, want in (0, %v)", p.Seq, rtt, timeout)
		}
	}
}

// checkLost checks every probe of res: unanswered, yet sent and stamped
// (the request left a's veth).
func checkLost(t *testing.T, res *Result) {
	t.Helper()
	for _, p := range res.Probes {
		if p.Answered() || p.Reply != NoReply || p.SendErr != nil {
			t.Errorf("probe %d: answered %v by %v, send error %v; want lost", p.Seq, p.Answered(), p.Reply, p.SendErr)
		}
		if p.SchedAt.IsZero() {
			t.Errorf("probe %d: no SchedAt: want one, the request left", p.Seq)
		}
	}
}

// rttSummary logs the p50s of a run.
func rttSummary(t *testing.T, what string, res *Result) {
	t.Helper()
	var sched, rtt, krtt []time.Duration
	for _, p := range res.Probes {
		if !p.Answered() {
			continue
		}
		sched = append(sched, p.SchedAt.Sub(p.SentAt))
		rtt = append(rtt, p.RTT())
		at, _ := p.KernelSentAt()
		krtt = append(krtt, p.ReceivedAt.Sub(at))
	}
	t.Logf("%s: %d/%d answered; p50 SCHED-SentAt %.1f us, user-space RTT %.1f us, RTT from SCHED %.1f us",
		what, res.Answered, res.Sent, p50us(sched), p50us(rtt), p50us(krtt))
}

// readProc reads a /proc/thread-self/net file as ns sees it.
func readProc(t *testing.T, ns *topology.NetNS, name string) string {
	t.Helper()
	var b []byte
	if err := ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return string(b)
}
