//go:build linux

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// listenIn starts a TCP listener on port in ns that counts the
// connections it accepts; t's cleanup closes it.
func listenIn(t *testing.T, ns *topology.NetNS, v6 bool, port int) *atomic.Int32 {
	t.Helper()
	network, addr := "tcp4", fmt.Sprintf("0.0.0.0:%d", port)
	if v6 {
		network, addr = "tcp6", fmt.Sprintf("[::]:%d", port)
	}
	l, err := topology.Open(ns, func() (net.Listener, error) { return net.Listen(network, addr) })
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return &accepted
}

// TestPrivilegedTCPProbe sends TCP SYN probes from a to b over IPv4 and
// IPv6: to a port a Go listener serves (SYN-ACK, and the listener never
// accepts anything), to a closed port (RST) and to a port b's INPUT drops
// (lost, but stamped). With conntrack loaded in both namespaces, nothing
// but CLOSE entries is left of the answered probes. Close releases the
// reserved ports and leaves no goroutine behind.
func TestPrivilegedTCPProbe(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) { testTCPProbe(t, v6) })
	}
}

func testTCPProbe(t *testing.T, v6 bool) {
	p := newPair(t, v6)
	const open, closed, dropped = 7001, 7002, 7003
	accepted := listenIn(t, p.b, v6, open)
	p.iptablesIn(t, p.b, "-A", "INPUT", "-p", "tcp", "--dport", fmt.Sprint(dropped), "-j", "DROP")
	for _, ns := range []*topology.NetNS{p.a, p.b} { // a rule that needs conntrack loads it in the netns
		p.iptablesIn(t, ns, "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "ACCEPT")
	}
	goroutines := runtime.NumGoroutine()

	cfg := Config{Target: p.addrB, Proto: TCP, Port: open, Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	conn, err := Open(p.a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ports := conn.(*socket).tcp.ports
	for _, tc := range []struct {
		name  string
		port  int
		count int
		want  Reply
	}{
		{"open", open, 20, SynAck},
		{"closed", closed, 20, Reset},
		{"dropped", dropped, 5, NoReply},
		{"open again", open, 5, SynAck},
	} {
		c := cfg
		c.Port, c.Count = tc.port, tc.count
		if tc.want == NoReply {
			c.Timeout = 300 * time.Millisecond
		}
		res, err := Run(context.Background(), conn, c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(res.Probes) != c.Count {
			t.Fatalf("%s: %d probes, want %d", tc.name, len(res.Probes), c.Count)
		}
		if tc.want == NoReply {
			checkLost(t, res)
		} else {
			checkAnswered(t, res, tc.want, p.addrB, c.Timeout)
		}
		rttSummary(t, fmt.Sprintf("TCP %s port %d", tc.name, tc.port), res)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the listener accepted %d connections, want none", n)
	}
	tcpFile := map[bool]string{false: "tcp", true: "tcp6"}[v6]
	if rows := synRecv(readProc(t, p.b, tcpFile)); len(rows) > 0 {
		t.Errorf("half-open connections left in b: %q", rows)
	}
	for _, ns := range []*topology.NetNS{p.a, p.b} {
		checkConntrack(t, ns, ports, dropped)
	}

	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	checkPortsFree(t, p.a, v6, ports)
	waitGoroutines(t, goroutines)
}

// synRecv returns the rows of a /proc/net/tcp{,6} dump in SYN_RECV (03).
func synRecv(dump string) []string {
	var rows []string
	for _, l := range strings.Split(dump, "\n")[1:] {
		if f := strings.Fields(l); len(f) > 3 && f[3] == "03" {
			rows = append(rows, l)
		}
	}
	return rows
}

// checkConntrack checks ns's conntrack table (/proc/net/nf_conntrack;
// netlink's dump leaves the TCP state out): every TCP entry of a probe (a
// source port of the block) is in CLOSE, but those to the dropped port,
// which the kernel times out as it would any unanswered SYN.
func checkConntrack(t *testing.T, ns *topology.NetNS, ports portBlock, dropped int) {
	t.Helper()
	var dump string
	if err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/nf_conntrack")
		dump = string(b)
		return err
	}); err != nil {
		t.Skipf("skipping the conntrack check: %v", err)
	}
	probes := 0
	for _, l := range strings.Split(dump, "\n") {
		// ipv4 2 tcp 6 9 CLOSE src=10.231.0.1 dst=10.231.0.2 sport=40878 dport=7001 ...
		f := strings.Fields(l)
		if len(f) < 6 || f[2] != "tcp" {
			continue
		}
		var sport, dport int
		for _, kv := range f {
			if v, ok := strings.CutPrefix(kv, "sport="); ok && sport == 0 {
				sport, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(kv, "dport="); ok && dport == 0 {
				dport, _ = strconv.Atoi(v)
			}
		}
		if !ports.contains(uint16(sport)) {
			continue
		}
		probes++
		if dport != dropped && f[5] != "CLOSE" {
			t.Errorf("conntrack in %s: %s, want it CLOSE", ns, l)
		}
	}
	if probes == 0 {
		t.Errorf("conntrack in %s holds no probe at all: is it loaded?", ns)
	}
	t.Logf("conntrack in %s: %d probe entries", ns, probes)
}

// checkPortsFree binds a TCP socket in ns to every port of the block:
// after Close none is held any more.
func checkPortsFree(t *testing.T, ns *topology.NetNS, v6 bool, ports portBlock) {
	t.Helper()
	domain := unix.AF_INET
	if v6 {
		domain = unix.AF_INET6
	}
	if err := ns.Do(func() error {
		holds, err := bindBlock(domain, int(ports.base), int(ports.size))
		for _, fd := range holds {
			unix.Close(fd)
		}
		return err
	}); err != nil {
		t.Errorf("ports %d-%d after Close: %v, want them free", ports.base, ports.base+ports.size-1, err)
	}
}

// waitGoroutines waits, at most a second, for the goroutines to be back
// to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines, %d before the run", runtime.NumGoroutine(), n)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrivilegedTCPNeedsNetRaw creates the TCP probe's sockets in a
// throw-away netns from a thread whose effective set lacks CAP_NET_RAW
// (capabilities are per thread): the error is a *topology.CapabilityError
// naming CAP_NET_RAW, and says what an unprivileged connect() timing would
// lose. The thread gets its capabilities and its netns back before it is
// unlocked. Letting it die locked instead is not enough: a goroutine that
// exits locked to the main thread wedges that thread where it is, and the
// main thread's netns is the process's (/proc/self/ns/net), which every
// later test of the package would then see as its own.
func TestPrivilegedTCPNeedsNetRaw(t *testing.T) {
	ns := labtest.NetNS(t, "pcap")
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var saved [2]unix.CapUserData
		if err := unix.Capget(&hdr, &saved[0]); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		reduced := saved
		reduced[unix.CAP_NET_RAW/32].Effective &^= 1 << (unix.CAP_NET_RAW % 32)
		if err := unix.Capset(&hdr, &reduced[0]); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = unix.Setns(ns.Fd(), unix.CLONE_NEWNET)
		if err == nil {
			var m tcpMade
			if m, err = makeTCP(false, 1); err == nil {
				m.Close()
			}
		}
		// Back as it was, or the thread stays locked and dies with the
		// goroutine (wedged, if it is the main thread: the check below
		// then fails the test).
		restoreNS := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET)
		hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		restoreCaps := unix.Capset(&hdr, &saved[0])
		if restoreNS == nil && restoreCaps == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	err := <-errc
	var ce *topology.CapabilityError
	if !errors.As(err, &ce) || ce.Capability != "CAP_NET_RAW" || !errors.Is(err, unix.EPERM) {
		t.Fatalf("got %v, want an EPERM CapabilityError naming CAP_NET_RAW", err)
	}
	for _, want := range []string{"CAP_NET_RAW", "connect()", "retransmitted", "1s", "hop"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	t.Log(err)
}
