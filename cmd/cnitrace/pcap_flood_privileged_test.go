package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/cnitrace/cnitrace/capture/tsharktest"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedPcapKeepsOutBackground floods the lab, during a trace,
// with what must not reach the file: echo requests from the pod to the
// peer pod without the magic and with it at the wrong offset (their
// replies come back the same way), UDP datagrams holding a probe token
// where no UDP probe carries it (answered with port unreachable errors
// that quote it; a datagram that opens with the token is a UDP probe now,
// of whichever run, and passes the filter like another run's echo), and the
// same between the nodes' uplinks, outside the overlay. The file holds
// the trace's probes and nothing else, and the kernel filter let nothing
// else reach cnitrace at all.
func TestPrivilegedPcapKeepsOutBackground(t *testing.T) {
	tshark := tsharktest.Look(t)
	l := labtest.New(t)
	f := startFlood(t, l)
	const count = 30
	file, r, code := tracePcap(t, l, "--count", strconv.Itoa(count), "--interval", "10ms")
	sent, echoed := f.stop()
	if code != cli.ExitOK || r.Probes.Received != count {
		t.Fatalf("exit %d, %d of %d probes answered; want all, exit 0", code, r.Probes.Received, count)
	}
	t.Logf("background: %d packets sent, %d echo replies to them received", sent, echoed)
	if sent < 1000 || echoed < 100 {
		t.Fatalf("the flood sent %d packets and got %d replies: too few to show anything", sent, echoed)
	}

	rows := tsharktest.Fields(t, tshark, file, []string{"-d", "udp.port==8472,vxlan"}, "frame.interface_id", "frame.comment", "data.data")
	if want := 2 * count * len(r.Points); len(rows) != want {
		t.Errorf("the file holds %d packets, want %d: every probe and reply at each of %d points, no background", len(rows), want, len(r.Points))
	}
	run := ""
	for i, row := range rows {
		if m := commentRE.FindStringSubmatch(row[1]); m != nil && i == 0 {
			run = m[2]
		}
		if prefix := fmt.Sprintf("%08x%s", probe.Magic, run); run == "" || !strings.HasPrefix(row[2], prefix) {
			t.Errorf("packet %d (%q): echo data %.40s..., want the trace's token %s...", i+1, row[1], row[2], prefix)
		}
	}
	for _, p := range r.Points {
		if p.Capture == nil || p.Capture.Packets != 2*count {
			t.Errorf("point %s: capture %+v, want exactly the %d probe packets past the filter", p.ID, p.Capture, 2*count)
		}
	}
	if r.Probes.Ignored != 0 {
		t.Errorf("the report ignored %d observations: background reached user space", r.Probes.Ignored)
	}
}

// flood sends background traffic across a lab until stop.
type flood struct {
	done         chan struct{}
	wg           sync.WaitGroup
	sent, echoed atomic.Int64
	conns        []net.PacketConn
}

// startFlood starts the background senders of
// TestPrivilegedPcapKeepsOutBackground: from node 1's pod to node 2's
// (through the overlay), and from node 1's uplink address to node 2's.
func startFlood(t *testing.T, l *lab.Lab) *flood {
	t.Helper()
	f := &flood{done: make(chan struct{})}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	f.from(t, n1.Pod.NS, n2.Pod.Addr)
	f.from(t, n1.NS, n2.UplinkAddr)
	t.Cleanup(func() { f.stop() })
	return f
}

func (f *flood) from(t *testing.T, ns *topology.NetNS, dst netip.Addr) {
	t.Helper()
	icmpConn, err := topology.Open(ns, func() (*icmp.PacketConn, error) { return icmp.ListenPacket("ip4:icmp", "0.0.0.0") })
	if err != nil {
		t.Fatalf("open the flood's ICMP socket: %v", err)
	}
	udpConn, err := topology.Open(ns, func() (net.PacketConn, error) { return net.ListenPacket("udp4", "0.0.0.0:0") })
	if err != nil {
		icmpConn.Close()
		t.Fatalf("open the flood's UDP socket: %v", err)
	}
	f.conns = append(f.conns, icmpConn, udpConn)
	token := probe.Payload{RunID: 0xbac6, Seq: 1, SentAt: time.Now()}.Marshal(56)
	payloads := [][]byte{
		[]byte("a ping without the magic, as any ping sends"),
		append([]byte("junk"), token...), // the magic, but not where the filter looks
	}
	icmpDst := &net.IPAddr{IP: dst.AsSlice()}
	udpDst := &net.UDPAddr{IP: dst.AsSlice(), Port: 9} // closed: answered with port unreachable
	f.wg.Add(2)
	go func() { // the replies, to show the flood crossed the path and came back
		defer f.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := icmpConn.ReadFrom(buf)
			if err != nil {
				return // closed by stop
			}
			if m, err := icmp.ParseMessage(1, buf[:n]); err == nil && m.Type == ipv4.ICMPTypeEchoReply {
				f.echoed.Add(1)
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		for seq := 0; ; seq++ {
			select {
			case <-f.done:
				return
			default:
			}
			for _, p := range payloads {
				msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x4242, Seq: seq, Data: p}}
				if b, err := msg.Marshal(nil); err == nil {
					if _, err := icmpConn.WriteTo(b, icmpDst); err == nil {
						f.sent.Add(1)
					}
				}
			}
			if _, err := udpConn.WriteTo(payloads[1], udpDst); err == nil { // the magic at UDP offset 4: no probe's
				f.sent.Add(1)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
}

// stop ends the flood (once) and returns what it sent and got back.
func (f *flood) stop() (sent, echoed int64) {
	select {
	case <-f.done:
	default:
		close(f.done)
		time.Sleep(50 * time.Millisecond) // the last replies
		for _, c := range f.conns {
			c.Close()
		}
		f.wg.Wait()
	}
	return f.sent.Load(), f.echoed.Load()
}
