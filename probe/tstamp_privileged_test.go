//go:build linux

package probe

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedTimestampingLeavesRXKeyOff reads the socket's options back:
// SO_TIMESTAMPING holds exactly the TX flags Listen set, without
// RX_SOFTWARE, and SO_TIMESTAMP(NS), old and new, are off. Any of these
// would turn on the host-wide RX timestamping key (design.md, fact 1).
func TestPrivilegedTimestampingLeavesRXKeyOff(t *testing.T) {
	conn, err := Listen(labtest.NetNS(t, "probe-ts"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	cerr := raw.Control(func(fd uintptr) {
		for _, o := range []struct {
			name string
			opt  int
		}{
			{"SO_TIMESTAMPING", unix.SO_TIMESTAMPING},
			{"SO_TIMESTAMP", unix.SO_TIMESTAMP}, {"SO_TIMESTAMPNS", unix.SO_TIMESTAMPNS},
			{"SO_TIMESTAMP_NEW", unix.SO_TIMESTAMP_NEW}, {"SO_TIMESTAMPNS_NEW", unix.SO_TIMESTAMPNS_NEW},
		} {
			if got[o.name], err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt); err != nil {
				t.Errorf("getsockopt(%s): %v", o.name, err)
			}
		}
	})
	if cerr != nil {
		t.Fatal(cerr)
	}
	if flags := got["SO_TIMESTAMPING"]; flags != txTimestamping || flags&unix.SOF_TIMESTAMPING_RX_SOFTWARE != 0 {
		t.Errorf("SO_TIMESTAMPING reads %#x, want exactly %#x, without RX_SOFTWARE (%#x)", flags, txTimestamping, unix.SOF_TIMESTAMPING_RX_SOFTWARE)
	}
	for _, name := range []string{"SO_TIMESTAMP", "SO_TIMESTAMPNS", "SO_TIMESTAMP_NEW", "SO_TIMESTAMPNS_NEW"} {
		if got[name] != 0 {
			t.Errorf("%s reads %d, want 0", name, got[name])
		}
	}
}

// TestPrivilegedTxTimestamps probes pod 1 -> pod 2 across the lab (bridge +
// VXLAN) and checks every answered probe's kernel stamps: SentAt <= SCHED
// <= SND < ReceivedAt. A second run on the same socket checks that the
// OPT_ID keys carry over. It logs how the pod's send path divides.
func TestPrivilegedTxTimestamps(t *testing.T) {
	l := labtest.New(t)
	conn, err := Listen(l.Nodes[0].Pod.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := Config{Target: l.Nodes[1].Pod.Addr, Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	for run, count := range []int{20, 5} {
		cfg.Count = count
		res, err := Run(context.Background(), conn, cfg)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		sched := checkStamps(t, res)
		var rtt []time.Duration
		for _, p := range res.Probes {
			rtt = append(rtt, p.RTT())
		}
		t.Logf("run %d, %d probes: p50 SCHED-SentAt %.1f us, user-space RTT %.1f us",
			run, count, p50us(sched), p50us(rtt))
	}
}

// TestPrivilegedTxTimestampsAfterRefusedSend makes netfilter refuse a probe
// (EPERM, after the kernel took an OPT_ID key), then probes again on the
// same socket: the stamps must still land on the right probes.
func TestPrivilegedTxTimestampsAfterRefusedSend(t *testing.T) {
	l := labtest.New(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skipf("skipping: %v", err)
	}
	pod := l.Nodes[0].Pod
	conn, err := Listen(pod.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := Config{Target: l.Nodes[1].Pod.Addr, Count: 3, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	if _, err := Run(context.Background(), conn, cfg); err != nil {
		t.Fatal(err)
	}
	iptables(t, l, pod.NSPath, "-A")
	runRefused(t, conn, cfg, syscall.EPERM) // an OUTPUT DROP rule
	iptables(t, l, pod.NSPath, "-D")
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkStamps(t, res)
}

func iptables(t *testing.T, l *lab.Lab, nsPath, op string) {
	t.Helper()
	if out, err := l.Command(t.Context(), nsPath, "iptables", "-w", op, "OUTPUT", "-p", "icmp", "-j", "DROP").CombinedOutput(); err != nil {
		t.Fatalf("iptables %s OUTPUT: %v: %s", op, err, out)
	}
}

// checkStamps checks the order of every answered probe's times and returns
// SCHED-SentAt of each.
func checkStamps(t *testing.T, res *Result) (sched []time.Duration) {
	t.Helper()
	for _, p := range res.Probes {
		if !p.Answered() {
			t.Errorf("probe %d unanswered", p.Seq)
			continue
		}
		if p.SchedAt.IsZero() {
			t.Errorf("probe %d: no SchedAt, want one", p.Seq)
			continue
		}
		if p.SchedAt.Before(p.SentAt) || !p.SchedAt.Before(p.ReceivedAt) {
			t.Errorf("probe %d: want SentAt %v <= SchedAt %v < ReceivedAt %v", p.Seq, p.SentAt, p.SchedAt, p.ReceivedAt)
		}
		kernel, clock := p.KernelSentAt()
		if rtt := p.ReceivedAt.Sub(kernel); clock != ClockSched || rtt > p.RTT() {
			t.Errorf("probe %d: RTT from %s %v, user-space RTT %v: want %s and no larger", p.Seq, clock, rtt, p.RTT(), ClockSched)
		}
		sched = append(sched, p.SchedAt.Sub(p.SentAt))
	}
	return sched
}

// p50us returns the median of d in microseconds, or 0 for none.
func p50us(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	return float64(s[len(s)/2]) / float64(time.Microsecond)
}

// TestPrivilegedRunSurvivesFullSendBuffer queues probes behind a slow TBF
// qdisc until the socket's send buffer is too full for it to be writable.
// Stamps then arrive as EPOLLERR alone, after which Go's netpoller fails
// every read with "not pollable"; Run must go on (it falls back to poll(2))
// and still read the stamps.
func TestPrivilegedRunSurvivesFullSendBuffer(t *testing.T) {
	ns := labtest.NetNS(t, "probe-tbf")
	for _, cmd := range [][]string{
		{"ip", "link", "add", "tx0", "type", "veth", "peer", "name", "tx1"},
		{"ip", "link", "set", "tx1", "up"},
		{"ip", "link", "set", "tx0", "up"},
		{"ip", "addr", "add", "10.99.0.2/24", "dev", "tx0"},
		{"ip", "neigh", "add", "10.99.0.1", "lladdr", "02:00:00:00:00:01", "dev", "tx0"},
		{"tc", "qdisc", "add", "dev", "tx0", "root", "tbf", "rate", "80kbit", "burst", "1600", "limit", "1000000"},
	} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			t.Skipf("skipping: %v", err)
		}
		if out, err := exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--"}, cmd...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd, err, out)
		}
	}
	conn, err := Listen(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 16384) }); err != nil || serr != nil {
		t.Fatalf("set SO_SNDBUF: %v, %v", err, serr)
	}
	// 1 kB probes leave TBF every 100 ms; from the 8th on the socket is not writable.
	cfg := Config{Target: netip.MustParseAddr("10.99.0.1"), Count: 12, Interval: time.Millisecond, Timeout: 300 * time.Millisecond, Size: 1000}
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	for _, p := range res.Probes {
		if p.SchedAt.IsZero() {
			t.Errorf("probe %d: no SCHED stamp", p.Seq)
		}
	}
}

// runRefused runs cfg on conn, where the kernel must refuse every send with
// errno: the run succeeds and records each probe unanswered with that
// error.
func runRefused(t *testing.T, conn Conn, cfg Config, errno syscall.Errno) {
	t.Helper()
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatalf("to %s: Run: %v, want the refusals recorded per probe", cfg.Target, err)
	}
	if len(res.Probes) != cfg.Count {
		t.Fatalf("to %s: %d probes recorded, want %d", cfg.Target, len(res.Probes), cfg.Count)
	}
	for _, p := range res.Probes {
		if !errors.Is(p.SendErr, errno) || p.Answered() {
			t.Errorf("to %s: probe %d has SendErr %v (answered %v), want %v and unanswered", cfg.Target, p.Seq, p.SendErr, p.Answered(), errno)
		}
	}
}
