//go:build linux

package containerd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/cri"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
)

// The end-to-end tests of issue 10 run what `cnitrace trace` runs, in
// this process: topology.Discover from a pod sandbox that containerd made
// and a reference CNI plugin wired, captures armed on every point the
// path has, probes from the pod, the report. They check the points by
// kind and netns (never by name), every probe at every point both ways,
// and an injected fault in the one segment and direction it was put in.

// realPod is a pod sandbox a test made, with its network namespace open
// until the test ends.
type realPod struct {
	*containerd.Sandbox
	NS     *topology.NetNS
	NSPath string     // /proc/PID/ns/net, for nsenter
	Addr   netip.Addr // the IPv4 address the plugin gave it
}

// runRealPod creates the sandbox default/name in d, finds it through the
// CRI as cnitrace --pod does, and opens its netns.
func runRealPod(t *testing.T, d *containerd.Daemon, name string) realPod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sb, err := d.RunPod(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cri.Dial(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pod, err := c.FindPod(ctx, "/", "default", name)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := pod.OpenNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return realPod{Sandbox: sb, NS: ns, NSPath: pod.NetNSPath, Addr: podAddr(t, ns)}
}

// podAddr returns the global IPv4 address of the pod netns ns.
func podAddr(t *testing.T, ns *topology.NetNS) netip.Addr {
	t.Helper()
	nl, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	addrs, err := nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
			return ip.Unmap()
		}
	}
	t.Fatalf("pod netns %s has no IPv4 address", ns)
	return netip.Addr{}
}

// traced is one in-process trace: its path and its report.
type traced struct {
	Path   *topology.Path
	Report *report.Result
}

// run is how many probes a trace sends, how often, and how long each waits.
type run struct {
	count             int
	interval, timeout time.Duration
}

// quick is a trace of 30 probes 10 ms apart; lossy one of 60 probes 5 ms
// apart, for a fault that drops about 30%.
var (
	quick = run{count: 30, interval: 10 * time.Millisecond, timeout: time.Second}
	lossy = run{count: 60, interval: 5 * time.Millisecond, timeout: 300 * time.Millisecond}
)

// trace probes target from src with node as the node, as cnitrace trace
// does, and logs the path and the text report.
func trace(t *testing.T, src, node *topology.NetNS, target netip.Addr, rn run) traced {
	t.Helper()
	path, err := topology.Discover(src, node, target)
	if err != nil {
		t.Fatalf("discover the path from %s to %s: %v", src, target, err)
	}
	r := measure(t, src, node, path, rn)
	var b bytes.Buffer
	if err := report.Render(&b, r, report.FormatText); err != nil {
		t.Fatal(err)
	}
	t.Logf("path %s (turnaround %s)\n%s", path, path.Turnaround, b.String())
	return traced{Path: path, Report: r}
}

// measure arms a capture on every point of path, sends rn's probes from
// src, drains the captures and correlates.
func measure(t *testing.T, src, node *topology.NetNS, path *topology.Path, rn run) *report.Result {
	t.Helper()
	conn, err := probe.ListenFor(src, path.Target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := probe.Config{Target: path.Target, Count: rn.count, Interval: rn.interval, Timeout: rn.timeout, Size: 56, ID: uint16(os.Getpid()), RunID: probe.NewRunID()}
	acc, err := report.NewAccumulator(path, []report.ProbeSource{{RunID: cfg.RunID, NetNS: src.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sink = func(p probe.Probe) { acc.AddProbe(0, p) }
	ccfg := capture.Config{Magic: probe.Magic, Sink: acc.Add}
	var targets []capture.Target
	for _, pt := range path.Points {
		ns := node
		if pt.NetNS == src.ID() {
			ns = src
		}
		targets = append(targets, capture.Target{NS: ns, Point: pt})
		if pt.TunnelPort > 0 {
			ccfg.UDPPorts = append(ccfg.UDPPorts, uint16(pt.TunnelPort))
		}
	}
	sess, err := capture.Start(context.Background(), targets, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	probes, perr := probe.RunSources(context.Background(), []probe.Source{{Conn: conn, Config: cfg}})
	capt, cerr := sess.Stop()
	if perr != nil || cerr != nil {
		t.Fatalf("probe: %v; drain captures: %v", perr, cerr)
	}
	r, err := acc.Result(report.Recorded{Probes: probes, Stats: capt.Stats})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantPoint is a point as the tests check it: by kind and netns only.
type wantPoint struct {
	kind topology.Kind
	ns   *topology.NetNS
}

// checkPoints asserts the path's points by kind and netns, and what it
// turns around at.
func checkPoints(t *testing.T, tr traced, turn topology.Turnaround, want ...wantPoint) {
	t.Helper()
	if tr.Path.Turnaround != turn {
		t.Errorf("path %s turns around at %q, want %q", tr.Path, tr.Path.Turnaround, turn)
	}
	if len(tr.Path.Points) != len(want) {
		t.Fatalf("path %s has %d points, want %d", tr.Path, len(tr.Path.Points), len(want))
	}
	for i, w := range want {
		if p := tr.Path.Points[i]; p.Kind != w.kind || p.NetNS != w.ns.ID() {
			t.Errorf("point %d is %s (%s), want kind %s in %s", i, p.Name(), p.Kind, w.kind, w.ns)
		}
	}
}

// classes lists the classes of the report's segments, in timeline order.
func classes(r *report.Result) []string {
	var c []string
	for _, s := range r.Segments {
		c = append(c, s.Class)
	}
	return c
}

// checkClasses asserts the segments' classes in timeline order.
func checkClasses(t *testing.T, r *report.Result, want ...string) {
	t.Helper()
	if got := classes(r); !slices.Equal(got, want) {
		t.Errorf("segment classes %v, want %v", got, want)
	}
}

// checkAllSeen checks that all n probes were answered and observed at
// both ends of every segment: every point saw every request and reply.
func checkAllSeen(t *testing.T, r *report.Result, n int) {
	t.Helper()
	if r.Probes.Sent != n || r.Probes.Received != n {
		t.Errorf("sent %d, received %d; want %d and %d", r.Probes.Sent, r.Probes.Received, n, n)
	}
	if got, want := len(r.Segments), 2*len(r.Points)-1; got != want {
		t.Errorf("got %d segments for %d points, want %d", got, len(r.Points), want)
	}
	for _, s := range r.Segments {
		if s.Seen != n || s.Lost != 0 || s.Unknown != 0 {
			t.Errorf("segment %s->%s (%s %s): seen %d lost %d unknown %d, want %d, 0, 0", s.From, s.To, s.Direction, s.Class, s.Seen, s.Lost, s.Unknown, n)
		}
	}
}

// checkLossIn checks that about 30% of rn's probes were lost, every loss
// in the one segment of class in direction, and that the verdict names it.
func checkLossIn(t *testing.T, r *report.Result, rn run, class, direction string) {
	t.Helper()
	checkLoss(t, r, rn, class+" ("+direction+")", func(s report.Segment) bool { return s.Class == class && s.Direction == direction })
}

// checkLossBetween is checkLossIn for the request segment from a point of
// kind from to the next, of kind to: one of several of its class.
func checkLossBetween(t *testing.T, r *report.Result, rn run, from, to topology.Kind) {
	t.Helper()
	kind := map[string]topology.Kind{}
	for _, p := range r.Points {
		kind[p.ID] = topology.Kind(p.Kind)
	}
	checkLoss(t, r, rn, fmt.Sprintf("%s -> %s (request)", from, to), func(s report.Segment) bool {
		return s.Direction == report.DirRequest && s.From != s.To && kind[s.From] == from && kind[s.To] == to
	})
}

// checkLoss checks that about 30% of rn's probes were lost, every loss in
// the one segment at says is the place (what, for messages), and that the
// verdict names that segment.
func checkLoss(t *testing.T, r *report.Result, rn run, what string, at func(report.Segment) bool) {
	t.Helper()
	lost := r.Lost()
	if lost < rn.count/10 || lost > rn.count*6/10 { // 30%: far outside 3 sigma either way
		t.Errorf("lost %d of %d, want about 30%%", lost, rn.count)
	}
	var place *report.Segment
	for _, s := range r.Segments {
		want := 0
		if at(s) {
			want, place = lost, &s
		}
		if s.Lost != want {
			t.Errorf("segment %s lost %d, want %d: the drop is in %s", describe(s), s.Lost, want, what)
		}
	}
	if l := r.Verdict.Loss; place == nil || l == nil || l.From != place.From || l.To != place.To || l.Direction != place.Direction || l.Lost != lost {
		t.Errorf("verdict loss %+v, want %d lost in %s; text %q", l, lost, what, r.Verdict.Text)
	}
}

// inNetNS runs name with args in the network namespace at nsPath (a lab
// node's, or a pod's /proc/PID/ns/net) and fails the test on error.
func inNetNS(t *testing.T, nsPath, name string, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath, "--", name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v in %s: %v\n%s", name, args, nsPath, err, out)
	}
}

// dropEchoRequests drops 30% of the echo requests in chain of the
// namespace at nsPath, until flushEchoDrops.
func dropEchoRequests(t *testing.T, nsPath, chain string) {
	t.Helper()
	inNetNS(t, nsPath, "iptables", "-w", "-I", chain, "-p", "icmp", "--icmp-type", "echo-request",
		"-m", "statistic", "--mode", "random", "--probability", "0.3", "-m", "comment", "--comment", dropComment, "-j", "DROP")
}

// dropComment marks the rules dropEchoRequests adds.
const dropComment = "cnitrace-test-drop"

// flushEchoDrops removes the rule dropEchoRequests added to chain.
func flushEchoDrops(t *testing.T, nsPath, chain string) {
	t.Helper()
	inNetNS(t, nsPath, "iptables", "-w", "-D", chain, "-p", "icmp", "--icmp-type", "echo-request",
		"-m", "statistic", "--mode", "random", "--probability", "0.3", "-m", "comment", "--comment", dropComment, "-j", "DROP")
}

// flood sends UDP datagrams of size bytes from ns to dst (port 9, discard)
// at rate bits per second, on the IP layer, until the test ends. It is the
// load that keeps a shaping queue full.
func flood(t *testing.T, ns *topology.NetNS, dst netip.Addr, size int, rate float64) {
	t.Helper()
	conn, err := topology.Open(ns, func() (*net.UDPConn, error) {
		return net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	})
	if err != nil {
		t.Fatalf("open the flood's socket in %s: %v", ns, err)
	}
	wire := float64(size+8+20+14) * 8 // UDP, IPv4 and Ethernet headers
	every := time.Duration(wire / rate * float64(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		payload := make([]byte, size)
		start := time.Now()
		for sent := 0; ctx.Err() == nil; sent++ {
			if d := time.Until(start.Add(time.Duration(sent) * every)); d > 0 {
				time.Sleep(d)
			}
			_, _ = conn.Write(payload) // a full queue drops, an ICMP error refuses: both expected
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
	})
	t.Logf("flooding %s from %s: %d-byte datagrams every %v (%.2f Mbit/s on the wire)", dst, ns, size, every, rate/1e6)
}

// segment returns the report's segment of class in direction, the first
// one in timeline order.
func segment(t *testing.T, r *report.Result, class, direction string) report.Segment {
	t.Helper()
	for _, s := range r.Segments {
		if s.Class == class && s.Direction == direction {
			return s
		}
	}
	t.Fatalf("no %s segment in the %s direction: %v", class, direction, classes(r))
	return report.Segment{}
}

// describe names a segment for messages.
func describe(s report.Segment) string {
	return fmt.Sprintf("%s->%s (%s %s)", s.From, s.To, s.Direction, s.Class)
}
