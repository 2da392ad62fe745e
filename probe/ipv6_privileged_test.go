//go:build linux

package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// v6Pair is two throw-away namespaces joined by a veth pair, p6a in a
// (addrA) and p6b in b (addrB), both in fdc0:6::/64. Nothing else is
// reachable from either.
type v6Pair struct {
	a, b         *topology.NetNS
	addrA, addrB netip.Addr
	linkA        netlink.Link
	nlA          *netlink.Handle
}

var v6Prefix = netip.MustParsePrefix("fdc0:6::/64")

// newV6Pair builds a v6Pair for t; labtest.NetNS skips unless root (fails
// when CI=true) and removes the namespaces, and with them the veths, in
// t's cleanup. The addresses are NODAD, so usable at once.
func newV6Pair(t *testing.T) *v6Pair {
	t.Helper()
	p := &v6Pair{a: labtest.NetNS(t, "p6"), b: labtest.NetNS(t, "p6"),
		addrA: netip.MustParseAddr("fdc0:6::1"), addrB: netip.MustParseAddr("fdc0:6::2")}
	p.nlA = netlinkHandle(t, p.a)
	nlB := netlinkHandle(t, p.b)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p6a"}, PeerName: "p6b", PeerNamespace: netlink.NsFd(p.b.Fd())}
	if err := p.nlA.LinkAdd(veth); err != nil {
		t.Fatalf("add veth p6a/p6b: %v", err)
	}
	p.linkA = upWithAddr(t, p.nlA, "p6a", p.addrA)
	linkB := upWithAddr(t, nlB, "p6b", p.addrB)
	waitOperUp(t, p.nlA, "p6a")
	waitOperUp(t, nlB, "p6b")
	addNeigh(t, p.nlA, p.linkA, p.addrB, linkB.Attrs().HardwareAddr)
	addNeigh(t, nlB, linkB, p.addrA, p.linkA.Attrs().HardwareAddr)
	p.warmUp(t)
	return p
}

// warmUp probes b from a on a socket of its own until one probe is
// answered, at most 10 times. On a fresh pair, even operationally up with
// static neighbours, the first request was lost about 1 run in 6 after
// leaving a's veth (SND stamped, no reply): the tests measure the probe,
// not how a new veth pair settles.
func (p *v6Pair) warmUp(t *testing.T) {
	t.Helper()
	conn := listenIPv6(t, p.a)
	defer conn.Close()
	cfg := Config{Target: p.addrB, Count: 1, Timeout: 200 * time.Millisecond, Size: 56}
	for range 10 {
		res, err := Run(context.Background(), conn, cfg)
		if err != nil {
			t.Fatalf("warm up: %v", err)
		}
		if res.Probes[0].Answered() {
			return
		}
	}
	t.Fatalf("warm up: no answer from %s in 10 tries", p.addrB)
}

// addNeigh adds a permanent neighbour entry for ip on link. newV6Pair
// needs no neighbour discovery this way: in about 1 run in 20 without
// them, the first neighbour solicitation went unanswered and the first
// probes waited a full ND retransmit (1 s) in the neighbour queue.
func addNeigh(t *testing.T, h *netlink.Handle, link netlink.Link, ip netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
	if err := h.NeighAdd(n); err != nil {
		t.Fatalf("add neighbour %s on %s: %v", ip, link.Attrs().Name, err)
	}
}

// waitOperUp waits, at most 5 s, until link name is operationally up. Until
// the kernel's linkwatch work has run (up to a second after the carrier
// came on) a veth keeps its noop qdisc, which drops the first neighbour
// solicitation: the first probes then wait a full ND retransmit (1 s) in
// the neighbour queue, and their SCHED stamps with them.
func waitOperUp(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s after 5s, want up", name, l.Attrs().OperState)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func netlinkHandle(t *testing.T, ns *topology.NetNS) *netlink.Handle {
	t.Helper()
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// upWithAddr brings link name up and gives it addr in v6Prefix, without
// duplicate address detection.
func upWithAddr(t *testing.T, h *netlink.Handle, name string, addr netip.Addr) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
	ipn := &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(v6Prefix.Bits(), 128)}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatalf("add %s to %s: %v", addr, name, err)
	}
	return l
}

// listenIPv6 opens ListenIPv6's socket in ns, skipping (outside CI) when
// the kernel has no IPv6.
func listenIPv6(t *testing.T, ns *topology.NetNS) Conn {
	t.Helper()
	conn, err := ListenFor(ns, v6Prefix.Addr())
	if errors.Is(err, unix.EAFNOSUPPORT) && os.Getenv("CI") != "true" {
		t.Skipf("skipping, this kernel has no IPv6: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestPrivilegedIPv6Probe probes a -> b across the veth pair: every probe
// answered within the timeout, and every one carrying SCHED and SND stamps
// in order (checkStamps), on two runs on the same socket.
func TestPrivilegedIPv6Probe(t *testing.T) {
	p := newV6Pair(t)
	conn := listenIPv6(t, p.a)
	cfg := Config{Target: p.addrB, Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	for run, count := range []int{20, 5} {
		cfg.Count = count
		res, err := Run(context.Background(), conn, cfg)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if len(res.Probes) != count || res.Target != p.addrB {
			t.Fatalf("run %d: got %d probes to %v, want %d to %v", run, len(res.Probes), res.Target, count, p.addrB)
		}
		sched := checkStamps(t, res)
		var rtt []time.Duration
		for _, pr := range res.Probes {
			if pr.Answered() && (pr.RTT() <= 0 || pr.RTT() >= cfg.Timeout) {
				t.Errorf("run %d, probe %d: RTT %v, want in (0, %v)", run, pr.Seq, pr.RTT(), cfg.Timeout)
			}
			rtt = append(rtt, pr.RTT())
		}
		t.Logf("run %d, %d probes over a veth: p50 SCHED-SentAt %.1f us, user-space RTT %.1f us",
			run, count, p50us(sched), p50us(rtt))
	}
	if stray, err := labtest.ThreadsOutsideNetNS(labtest.Self(t)); err != nil || len(stray) > 0 {
		t.Errorf("threads left in a foreign netns: %v (%v)", stray, err)
	}
}

// TestPrivilegedIPv6Unanswered probes addresses in a's subnet that nobody
// holds: the run ends after its timeout with every probe unanswered and no
// error. With a static neighbour entry the requests leave the veth (b
// drops them, not being their MAC), so they are still stamped; without
// one they wait for neighbour discovery, which outlasts the run.
func TestPrivilegedIPv6Unanswered(t *testing.T) {
	p := newV6Pair(t)
	static := netip.MustParseAddr("fdc0:6::99")
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	addNeigh(t, p.nlA, p.linkA, static, mac)
	conn := listenIPv6(t, p.a)
	for _, tc := range []struct {
		name       string
		target     netip.Addr
		wantStamps bool
	}{
		{"static neighbour", static, true},
		{"unresolved neighbour", netip.MustParseAddr("fdc0:6::98"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Target: tc.target, Count: 5, Interval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond, Size: 56}
			start := time.Now()
			res, err := Run(context.Background(), conn, cfg)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if took := time.Since(start); took < cfg.Timeout || took > 5*time.Second {
				t.Errorf("run took %v, want at least the %v timeout and well under 5s", took, cfg.Timeout)
			}
			if len(res.Probes) != cfg.Count {
				t.Fatalf("got %d probes, want %d", len(res.Probes), cfg.Count)
			}
			for _, pr := range res.Probes {
				if pr.Answered() {
					t.Errorf("probe %d answered at %v, want unanswered", pr.Seq, pr.ReceivedAt)
				}
				if tc.wantStamps && pr.SchedAt.IsZero() {
					t.Errorf("probe %d: no SchedAt: want one, the request left the veth", pr.Seq)
				}
			}
		})
	}
}

// TestPrivilegedIPv6StampsAfterUnroutedSend checks, for IPv6, a row of the
// OPT_ID key table: a send that fails for want of a route (ENETUNREACH)
// takes no key, so the next run's stamps land on the right probes.
func TestPrivilegedIPv6StampsAfterUnroutedSend(t *testing.T) {
	p := newV6Pair(t)
	conn := listenIPv6(t, p.a)
	cfg := Config{Target: p.addrB, Count: 3, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	if _, err := Run(context.Background(), conn, cfg); err != nil {
		t.Fatal(err)
	}
	unrouted := cfg
	unrouted.Target = netip.MustParseAddr("fdc0:7::1") // a has no route outside fdc0:6::/64
	runRefused(t, conn, unrouted, syscall.ENETUNREACH)
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkStamps(t, res)
}

// TestPrivilegedIPv6SocketOptions reads ListenIPv6's options back: the
// ICMP6_FILTER passes type 129 only, and SO_TIMESTAMPING holds exactly the
// TX flags, without RX_SOFTWARE (design.md, fact 1).
func TestPrivilegedIPv6SocketOptions(t *testing.T) {
	conn := listenIPv6(t, labtest.NetNS(t, "p6"))
	if conn.(*socket).icmpProto() != protoICMPv6 {
		t.Fatalf("ListenFor(ns, %v) gave a %T, want an ICMPv6 socket", v6Prefix.Addr(), conn)
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var filter *unix.ICMPv6Filter
	var flags int
	var ferr, terr error
	if err := raw.Control(func(fd uintptr) {
		filter, ferr = unix.GetsockoptICMPv6Filter(int(fd), unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER)
		flags, terr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING)
	}); err != nil {
		t.Fatal(err)
	}
	if ferr != nil || filter.Data != icmp6Filter(129).Data {
		t.Errorf("ICMP6_FILTER reads %#x (%v), want %#x", filter.Data, ferr, icmp6Filter(129).Data)
	}
	if terr != nil || flags != txTimestamping {
		t.Errorf("SO_TIMESTAMPING reads %#x (%v), want exactly %#x", flags, terr, txTimestamping)
	}
}

// TestPrivilegedIPv6FilterDropsRequests sends one echo request to ::1 in a
// fresh netns. Over loopback a raw ICMPv6 socket would first read its own
// request (type 128) as it comes in; with ICMP6_FILTER the first thing it
// reads is the reply (type 129).
func TestPrivilegedIPv6FilterDropsRequests(t *testing.T) {
	ns := labtest.NetNS(t, "p6")
	lo, err := netlinkHandle(t, ns).LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlinkHandle(t, ns).LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	conn := listenIPv6(t, ns)
	req, err := protoICMPv6.echoRequest(1, 1, Payload{RunID: 1}.Marshal(56))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteTo(req, &net.IPAddr{IP: net.IPv6loopback}); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read the reply: %v", err)
	}
	m, err := icmp.ParseMessage(int(protoICMPv6), buf[:n])
	if err != nil || m.Type != ipv6.ICMPTypeEchoReply {
		t.Fatalf("first message read: %v (%v), want an echo reply", m, err)
	}
}

// TestPrivilegedIPv6ErrQueueCmsgs reads the error queue of an ICMPv6
// socket directly after one send: each stamp comes as SCM_TIMESTAMPING
// plus SOL_IPV6/IPV6_RECVERR (not SOL_IP/IP_RECVERR as on ICMPv4),
// parseTxStamp reads it with the send's key, and the send gets one stamp
// only: SCHED, no SND.
func TestPrivilegedIPv6ErrQueueCmsgs(t *testing.T) {
	p := newV6Pair(t)
	s, ok := listenIPv6(t, p.a).(*socket)
	if !ok {
		t.Fatal("ListenIPv6 did not return a *socket")
	}
	req, err := protoICMPv6.echoRequest(1, 0, Payload{RunID: 1}.Marshal(56))
	if err != nil {
		t.Fatal(err)
	}
	// The first packet of a fresh socket gets OPT_ID key 0.
	if _, key, err := s.sendKeyed(req, netip.AddrPortFrom(p.addrB, 0), time.Now); err != nil || key != 0 {
		t.Fatalf("send: key %d, %v; want key 0", key, err)
	}
	raw, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	type cmsgID struct{ level, typ int32 }
	seen := map[cmsgID]bool{}
	stamps := 0
	var from unix.Sockaddr
	var quietSince time.Time // when the queue was first found empty after a stamp
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && (quietSince.IsZero() || time.Since(quietSince) < 20*time.Millisecond) {
		var oobn int
		var rerr error
		oob := make([]byte, 512)
		if err := raw.Control(func(fd uintptr) {
			_, oobn, _, from, rerr = unix.Recvmsg(int(fd), make([]byte, 64), oob, unix.MSG_ERRQUEUE)
		}); err != nil {
			t.Fatal(err)
		}
		if errors.Is(rerr, unix.EAGAIN) {
			if stamps > 0 && quietSince.IsZero() {
				quietSince = time.Now()
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if rerr != nil {
			t.Fatalf("recvmsg(MSG_ERRQUEUE): %v", rerr)
		}
		if err := walkCmsgs(oob[:oobn], func(level, typ int32, _ []byte) { seen[cmsgID{level, typ}] = true }); err != nil {
			t.Fatal(err)
		}
		st, ok, err := parseTxStamp(oob[:oobn])
		if err != nil || !ok || st.key != 0 {
			t.Fatalf("parseTxStamp: %+v, %v, %v; want a SCHED stamp with key 0", st, ok, err)
		}
		stamps++
	}
	if stamps != 1 {
		t.Errorf("got %d stamps for one send, want one (SCHED)", stamps)
	}
	if !seen[cmsgID{unix.SOL_IPV6, unix.IPV6_RECVERR}] || seen[cmsgID{unix.SOL_IP, unix.IP_RECVERR}] {
		t.Errorf("cmsgs seen %v: want SOL_IPV6/IPV6_RECVERR and no SOL_IP/IP_RECVERR", seen)
	}
	t.Logf("cmsgs (level, type): %v; msg_name %#v (empty: OPT_TSONLY stamps carry no address)", seen, from)
}
