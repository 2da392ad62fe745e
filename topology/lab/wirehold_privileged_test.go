//go:build linux

package lab_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// sendProbes sends n ICMP echoes carrying probe tokens (run id runID,
// sequences 0 to n-1) from pod 1 to pod 2, every 10 ms, and waits up to a
// second for the last reply.
func sendProbes(t *testing.T, l *lab.Lab, runID uint64, n int) (replies int) {
	t.Helper()
	c, err := topology.Open(l.Nodes[0].Pod.NS, func() (*icmp.PacketConn, error) { return icmp.ListenPacket("ip4:icmp", "0.0.0.0") })
	if err != nil {
		t.Fatalf("open an ICMP socket in pod 1: %v", err)
	}
	defer c.Close()
	dst := &net.IPAddr{IP: l.Nodes[1].Pod.Addr.AsSlice()}
	for seq := range n {
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x4c61, Seq: seq,
			Data: probe.Payload{RunID: runID, Seq: uint32(seq), SentAt: time.Now()}.Marshal(56)}}
		b, err := m.Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo(b, dst); err != nil {
			t.Fatalf("send probe %d: %v", seq, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(time.Second))
	for replies < n { // bounded by the deadline
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			break
		}
		if m, err := icmp.ParseMessage(1, buf[:k]); err == nil && m.Type == ipv4.ICMPTypeEchoReply {
			replies++
		}
	}
	return replies
}

// The delay line records how long it held each frame carrying a probe,
// per lane and by run id and sequence, and nothing for ping's echoes:
// the request lane held each request D plus its lateness, the reply lane
// each reply its own wake-up time.
func TestPrivilegedWireHolds(t *testing.T) {
	const d, n, runID = 2 * time.Millisecond, 10, 0x0123456789abcdef
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true, Network: lab.Network{Request: lab.Impairment{Delay: d}}}})
	pingRun(t, l, 3) // ping's echoes carry no token
	if s, _ := l.WireStats(); len(s.Request.Holds)+len(s.Reply.Holds) != 0 {
		t.Fatalf("holds recorded for ping's echoes: %+v", s)
	}
	if got := sendProbes(t, l, runID, n); got != n {
		t.Fatalf("%d of %d probes answered", got, n)
	}
	s, _ := l.WireStats()
	for _, c := range []struct {
		name     string
		holds    []lab.ProbeHold
		reply    bool
		min, max time.Duration
	}{
		{"request", s.Request.Holds, false, d, d + 5*time.Millisecond},
		{"reply", s.Reply.Holds, true, 0, 5 * time.Millisecond},
	} {
		if len(c.holds) != n {
			t.Errorf("%s lane: %d holds, want %d: %+v", c.name, len(c.holds), n, c.holds)
			continue
		}
		for i, h := range c.holds {
			if h.RunID != runID || h.Seq != uint32(i) || h.Reply != c.reply || h.Hold < c.min || h.Hold > c.max {
				t.Errorf("%s lane, hold %d: %+v; want run %x seq %d reply %v, held %v-%v", c.name, i, h, uint64(runID), i, c.reply, c.min, c.max)
			}
		}
		t.Logf("%s lane: first hold %v, last %v", c.name, c.holds[0].Hold, c.holds[n-1].Hold)
	}
}
