//go:build linux

package capture

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

var record = flag.Bool("record", false, "rewrite "+recordedVXLAN+" from a real capture (needs root)")

// TestPrivilegedCaptureVXLAN probes across the VXLAN lab from A and captures
// on A's VXLAN device and underlay: every probe is seen at both points with
// the right direction, tunnel and addresses, and background traffic never.
func TestPrivilegedCaptureVXLAN(t *testing.T) {
	lab := newVXLANLab(t)
	s, sent, checkLeaks := probeAcross(t, lab)
	c, err := s.Stop() // right after the last reply: its packets must still be drained
	if err != nil {
		t.Fatal(err)
	}
	checkLeaks()
	checkObservations(t, lab, c, sent)
	logTiming(t, c)
	if *record {
		writeRecording(t, lab.points(), c.Observations)
	}
}

// probeAcross starts a session on lab's points (frames kept) and sends
// probeCount probes from A to B's overlay address, each after background
// traffic the capture must not keep; it returns the session, still
// running, the probes' payloads, and a check that no descriptor or
// goroutine is left over from the session (for after it ended).
func probeAcross(t *testing.T, lab *vxlanLab) (*Session, [][]byte, func()) {
	t.Helper()
	conn := openICMP(t, lab.a.ns)
	udp := openUDP(t, lab.a.ns)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	s, err := Start(context.Background(), lab.targets(), Config{Magic: probe.Magic, KeepFrames: true})
	if err != nil {
		t.Fatal(err)
	}
	sent := make([][]byte, probeCount)
	for i := range sent {
		sendBackground(t, conn, udp, lab.b.overlay)
		sent[i] = probe.Payload{RunID: 0xc0ffee, Seq: uint32(i), SentAt: time.Now()}.Marshal(56)
		ping(t, conn, lab.b.overlay, i, sent[i])
	}
	return s, sent, func() { t.Helper(); checkNoLeaks(t, fds, goroutines) }
}

// TestPrivilegedCaptureFinish is TestPrivilegedCaptureVXLAN ended with
// Finish and Close instead of Stop: Finish returns every observation and
// final counters while the rings still close; Close waits for them (no
// descriptor or goroutine is left), may be called again, and a second
// Finish or Stop is refused.
func TestPrivilegedCaptureFinish(t *testing.T) {
	lab := newVXLANLab(t)
	s, sent, checkLeaks := probeAcross(t, lab)
	c, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	checkObservations(t, lab, c, sent)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	checkLeaks()
	if _, err := s.Finish(); err == nil {
		t.Error("a second Finish: got no error")
	}
	if _, err := s.Stop(); err == nil {
		t.Error("Stop after Finish: got no error")
	}
}

// checkObservations asserts each probe was seen four times: request TX and
// reply RX at p0 (vx0, plain) and at p1 (ul0, inside VXLAN), nothing else.
func checkObservations(t *testing.T, lab *vxlanLab, c *Capture, sent [][]byte) {
	t.Helper()
	if got, want := len(c.Observations), 4*len(sent); got != want {
		t.Errorf("got %d observations, want %d (2 points x request and reply x %d probes)", got, want, len(sent))
	}
	for _, st := range c.Stats {
		if st.Packets != uint64(2*len(sent)) || st.Drops != 0 || st.Undecodable != 0 {
			t.Errorf("point %s: got stats %+v, want %d packets and no drops", st.Point, st, 2*len(sent))
		}
	}
	a, b := lab.a, lab.b
	for _, o := range c.Observations {
		p, err := probe.ParsePayload(o.Payload)
		if err != nil || p.RunID != 0xc0ffee || int(p.Seq) >= len(sent) {
			t.Errorf("observation %+v: not one of our probes (%v)", o, err)
			continue
		}
		if !bytes.Equal(o.Payload, sent[p.Seq]) {
			t.Errorf("probe %d at %s: payload differs from what was sent", p.Seq, o.Point)
		}
		wantDir, src, dst := topology.TX, a.overlay, b.overlay
		if o.IsReply() {
			wantDir, src, dst = topology.RX, b.overlay, a.overlay
		}
		if o.Dir != wantDir || o.Src != src || o.Dst != dst {
			t.Errorf("probe %d type %d at %s: got %s %s > %s, want %s %s > %s", p.Seq, o.ICMPType, o.Point, o.Dir, o.Src, o.Dst, wantDir, src, dst)
		}
		wantTunnel, osrc, odst := "", netip.Addr{}, netip.Addr{}
		if o.Point == "p1" {
			wantTunnel, osrc, odst = TunnelVXLAN, a.under, b.under
			if o.IsReply() {
				osrc, odst = b.under, a.under
			}
		}
		if o.Tunnel != wantTunnel || o.OuterSrc != osrc || o.OuterDst != odst {
			t.Errorf("probe %d at %s: got tunnel %q %s > %s, want %q %s > %s", p.Seq, o.Point, o.Tunnel, o.OuterSrc, o.OuterDst, wantTunnel, osrc, odst)
		}
		if len(o.Frame) == 0 {
			t.Errorf("probe %d at %s: no frame kept", p.Seq, o.Point)
		}
	}
}

// logTiming reports what this kernel stamps (skb or copy) and the delay
// between the two points; it also checks the taps are in causal order.
func logTiming(t *testing.T, c *Capture) {
	t.Helper()
	type key struct {
		seq   uint32
		reply bool
		point string
	}
	at := map[key]Observation{}
	stamps := map[string]int{}
	for _, o := range c.Observations {
		p, _ := probe.ParsePayload(o.Payload)
		at[key{p.Seq, o.IsReply(), o.Point}] = o
		stamps[o.Point+" "+string(o.Dir)+" "+string(o.Stamp)]++
	}
	t.Logf("stamp sources: %v", stamps)
	for seq := uint32(0); seq < probeCount; seq++ {
		reqVX, reqUL := at[key{seq, false, "p0"}], at[key{seq, false, "p1"}]
		repUL, repVX := at[key{seq, true, "p1"}], at[key{seq, true, "p0"}]
		if reqUL.At.Before(reqVX.At) || repVX.At.Before(repUL.At) {
			t.Errorf("probe %d: taps out of order: request vx0 %v ul0 %v, reply ul0 %v vx0 %v", seq, reqVX.At, reqUL.At, repUL.At, repVX.At)
		}
		t.Logf("probe %d: request vx0 TX -> ul0 TX %v; ul0 TX -> ul0 RX %v; reply ul0 RX -> vx0 RX %v",
			seq, reqUL.At.Sub(reqVX.At), repUL.At.Sub(reqUL.At), repVX.At.Sub(repUL.At))
	}
}

func writeRecording(t *testing.T, points []topology.Point, obs []Observation) {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePcapNG(&buf, points, obs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recordedVXLAN, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d observations, %d bytes)", recordedVXLAN, len(obs), buf.Len())
}

// TestPrivilegedStartClosesOnError asks for a point whose interface does not
// exist: Start fails naming it and leaves no descriptor open.
func TestPrivilegedStartClosesOnError(t *testing.T) {
	lab := newVXLANLab(t)
	targets := lab.targets()
	targets = append(targets, Target{NS: lab.a.ns, Point: topology.Point{ID: "p2", Interface: "nosuch0", NetNS: lab.a.ns.ID()}})
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	s, err := Start(context.Background(), targets, Config{Magic: probe.Magic})
	if err == nil {
		s.Stop()
		t.Fatal("Start with a missing interface: got no error")
	}
	if !strings.Contains(err.Error(), "nosuch0@"+lab.a.ns.ID()) {
		t.Errorf("got error %q, want one naming nosuch0@%s", err, lab.a.ns.ID())
	}
	checkNoLeaks(t, fds, goroutines)
	stray, err := labtest.ThreadsOutsideNetNS(labtest.Self(t))
	if err != nil || len(stray) > 0 {
		t.Errorf("threads left in a foreign netns: %v (%v)", stray, err)
	}
}

// TestPrivilegedStopAfterCancel cancels the context first: the readers stop
// by themselves and Stop still returns what they read and releases all.
func TestPrivilegedStopAfterCancel(t *testing.T) {
	lab := newVXLANLab(t)
	conn := openICMP(t, lab.a.ns)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, lab.targets(), Config{Magic: probe.Magic})
	if err != nil {
		t.Fatal(err)
	}
	data := probe.Payload{RunID: 1, Seq: 0}.Marshal(56)
	ping(t, conn, lab.b.overlay, 0, data)
	cancel()
	time.Sleep(2 * drainTime) // the readers drain and exit on their own
	c, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Observations); got != 4 {
		t.Errorf("got %d observations, want 4", got)
	}
	for _, o := range c.Observations {
		if o.Frame != nil {
			t.Errorf("frame kept without KeepFrames")
		}
	}
	checkNoLeaks(t, fds, goroutines)
	if _, err := s.Stop(); err == nil {
		t.Errorf("second Stop: got no error")
	}
}

func openICMP(t *testing.T, ns *topology.NetNS) *icmp.PacketConn {
	t.Helper()
	conn, err := topology.Open(ns, func() (*icmp.PacketConn, error) {
		return icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	})
	if err != nil {
		t.Fatalf("open raw ICMP socket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func openUDP(t *testing.T, ns *topology.NetNS) net.PacketConn {
	t.Helper()
	conn, err := topology.Open(ns, func() (net.PacketConn, error) {
		return net.ListenPacket("udp4", "0.0.0.0:0")
	})
	if err != nil {
		t.Fatalf("open UDP socket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sendBackground sends what the filter must keep out: a UDP datagram that
// carries the magic where no UDP or DNS probe has it, 5 bytes in (to a
// closed port, so B answers with an ICMP error quoting it), and a ping
// without it. (At the payload's start the magic would make the datagram a
// UDP probe.)
func sendBackground(t *testing.T, conn *icmp.PacketConn, udp net.PacketConn, dst netip.Addr) {
	t.Helper()
	data := append([]byte("bg:5 "), probe.Payload{RunID: 0xc0ffee}.Marshal(56)...)
	if _, err := udp.WriteTo(data, &net.UDPAddr{IP: dst.AsSlice(), Port: 9}); err != nil {
		t.Fatalf("send background UDP: %v", err)
	}
	writeEcho(t, conn, dst, 0x4243, 0, []byte("not a probe, just a ping with no magic"))
}

// ping sends one echo request with data and waits up to 2 s for its reply.
func ping(t *testing.T, conn *icmp.PacketConn, dst netip.Addr, seq int, data []byte) {
	t.Helper()
	writeEcho(t, conn, dst, 0x4242, seq, data)
	deadline := time.Now().Add(2 * time.Second)
	if err := conn.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for i := 0; i < 100 && time.Now().Before(deadline); i++ {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("wait for echo reply %d: %v", seq, err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && bytes.Equal(e.Data, data) {
			return
		}
	}
	t.Fatalf("no echo reply to probe %d", seq)
}

func writeEcho(t *testing.T, conn *icmp.PacketConn, dst netip.Addr, id, seq int, data []byte) {
	t.Helper()
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		t.Fatalf("send echo request to %s: %v", dst, err)
	}
}

// openFDs returns this process's open descriptors, each as its number and
// what it points to (a socket:[inode], a file path).
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target // an fd closed meanwhile (ReadDir's own) is left out
		}
	}
	return fds
}

// checkNoLeaks compares descriptors and goroutines with those taken before
// Start. A descriptor open now that was not open then (or then pointed
// elsewhere) is a leak; one closed meanwhile is not (the runtime and
// earlier tests' cleanups close theirs at any time). Goroutines that
// already delivered their result may take a moment to exit, so that count
// is polled for up to a second.
func checkNoLeaks(t *testing.T, before map[string]string, goroutines int) {
	t.Helper()
	for fd, target := range openFDs(t) {
		if before[fd] != target {
			t.Errorf("descriptor %s (%s) is open, and was not before Start", fd, target)
		}
	}
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > goroutines {
		t.Errorf("got %d goroutines, want at most %d as before Start", got, goroutines)
	}
}

// TestPrivilegedOneReaderForAllRings captures on the same points three
// times over (six rings, each point thrice under its own ID): Start adds
// one goroutine however many rings there are, every ring's packets still
// reach the session, and the drain, right after the last reply, ends once
// the rings' counters say every packet was read: the best of three tries
// must come in under drainTime, which the fixed drain of before always
// took in full.
func TestPrivilegedOneReaderForAllRings(t *testing.T) {
	lab := newVXLANLab(t)
	conn := openICMP(t, lab.a.ns)
	var targets []Target
	for i := range 3 {
		for _, tg := range lab.targets() {
			tg.Point.ID = fmt.Sprintf("%s-%d", tg.Point.ID, i)
			targets = append(targets, tg)
		}
	}
	fds, goroutines := openFDs(t), settledGoroutines()
	best := time.Hour
	for try := range 3 {
		s, err := Start(context.Background(), targets, Config{Magic: probe.Magic})
		if err != nil {
			t.Fatal(err)
		}
		if got := settledGoroutines() - goroutines; got != 1 {
			t.Errorf("Start on %d rings added %d goroutines, want 1", len(targets), got)
		}
		data := probe.Payload{RunID: 1, Seq: uint32(try)}.Marshal(56)
		ping(t, conn, lab.b.overlay, try, data)
		start := time.Now()
		s.stopReading()
		best = min(best, time.Since(start))
		c, err := s.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(c.Observations), 2*len(targets); got != want {
			t.Errorf("try %d: got %d observations, want %d (request and reply at each of %d rings)", try, got, want, len(targets))
		}
		checkNoLeaks(t, fds, goroutines)
	}
	t.Logf("the drain right after the last reply took %v at best (bound %v)", best, drainTime)
	if best >= drainTime {
		t.Errorf("the drain took %v at best, want less than its bound %v", best, drainTime)
	}
}

// settledGoroutines counts the goroutines once the count holds still for
// 20 ms (a goroutine that has handed over its result may not have
// returned yet), for at most a second.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}
