package report

import (
	"net/netip"
	"testing"

	"github.com/cnitrace/cnitrace/capture"
)

// syn and answer are a SYN of sequence seq seen at point from sport to
// port 80, and its SYN-ACK seen there.
func syn(point string, seq uint32, sport uint16) capture.Observation {
	return capture.Observation{Point: point, Proto: capture.ProtoTCP, TCPFlags: capture.TCPFlagSYN,
		Src: netip.MustParseAddr("10.244.1.2"), Dst: netip.MustParseAddr("10.96.0.10"), SrcPort: sport, DstPort: 80,
		TCPSeq: isn(seq)}
}

func answer(point string, seq uint32, sport uint16) capture.Observation {
	return capture.Observation{Point: point, Proto: capture.ProtoTCP, TCPFlags: capture.TCPFlagSYN | capture.TCPFlagACK,
		Src: netip.MustParseAddr("10.96.0.10"), Dst: netip.MustParseAddr("10.244.1.2"), SrcPort: 80, DstPort: sport,
		TCPAck: isn(seq) + 1}
}

// isn is the ISN the prober gives probe seq (docs/probe.md).
func isn(seq uint32) uint32 { return 0x636e0000 | (seq&lowSeqMask)<<1 }

func TestTCPTiesMatchAtTheSamePoint(t *testing.T) {
	ties := newTCPTies(8)
	ties.request(syn("p0", 5, 40005), tiedProbe{0, 5})
	ties.request(syn("p0", 6, 40006), tiedProbe{0, 6})
	ties.request(syn("p1", 5, 40005), tiedProbe{0, 5})
	for _, tc := range []struct {
		name string
		o    capture.Observation
		want tiedProbe
		ok   bool
	}{
		{"answer at p1", answer("p1", 5, 40005), tiedProbe{0, 5}, true},
		{"second answer at p1: the tuple seen at p0", answer("p1", 5, 40005), tiedProbe{0, 5}, true},
		{"answer at a point with no SYN, on the tuple seen elsewhere", answer("p2", 5, 40005), tiedProbe{0, 5}, true},
		{"answer to another port", answer("p0", 5, 40006), tiedProbe{}, false},
		{"answer at p0", answer("p0", 5, 40005), tiedProbe{0, 5}, true},
		{"the other probe", answer("p0", 6, 40006), tiedProbe{0, 6}, true},
		{"not a probe's ack", func() capture.Observation { o := answer("p0", 6, 40006); o.TCPAck = 12345; return o }(), tiedProbe{}, false},
	} {
		got, ok := ties.reply(tc.o)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if len(ties.tuples) != 0 || len(ties.probes) != 0 || len(ties.retired) != 2 {
		t.Errorf("got %d tuples, %d probes and %d retired left after every answer, want none, none and 2", len(ties.tuples), len(ties.probes), len(ties.retired))
	}
}

// An answer behind a NAT is tied by the tuple seen at its point: the
// translated addresses and ports there, not the pod's; or, where the
// point saw the SYN translated and the answer already restored (a bridge
// with br_netfilter), by the tuple seen at another point.
func TestTCPTiesThroughNAT(t *testing.T) {
	ties := newTCPTies(8)
	s := syn("p3", 9, 40009)
	s.Dst, s.DstPort = netip.MustParseAddr("10.244.2.3"), 8080
	ties.request(s, tiedProbe{0, 9})
	a := answer("p3", 9, 40009)
	if _, ok := ties.reply(a); ok {
		t.Error("an answer from the untranslated address matched a SYN seen only translated")
	}
	ties.request(syn("p1", 9, 40009), tiedProbe{0, 9})
	ties.request(s, tiedProbe{0, 9})
	s2 := s
	s2.Point = "p2"
	ties.request(s2, tiedProbe{0, 9})
	restored := answer("p2", 9, 40009) // the reply at p2 already un-DNATed
	if got, ok := ties.reply(restored); !ok || got != (tiedProbe{0, 9}) {
		t.Errorf("restored answer at p2: got %v %v, want probe 9", got, ok)
	}
	if _, ok := ties.tuples[tcpTuple{"p2", s.Src, s.Dst, 40009, 8080, 9}]; ok {
		t.Error("the SYN at p2 stayed tied after its point's answer")
	}
	a.Src, a.SrcPort = netip.MustParseAddr("10.244.2.3"), 8080
	if got, ok := ties.reply(a); !ok || got != (tiedProbe{0, 9}) {
		t.Errorf("got %v %v, want probe 9", got, ok)
	}
}

// Lost probes' SYNs are evicted oldest first, folded ones forgotten, and
// the order kept for eviction stays within a multiple of the live probes.
func TestTCPTiesBounded(t *testing.T) {
	const max = 100
	ties := newTCPTies(max)
	for seq := uint32(0); seq < 100_000; seq++ {
		p := tiedProbe{0, seq}
		ties.request(syn("p0", seq, uint16(40000+seq%1024)), p)
		ties.request(syn("p1", seq, uint16(40000+seq%1024)), p)
		switch seq % 3 {
		case 0: // answered at both points
			ties.reply(answer("p0", seq, uint16(40000+seq%1024)))
			ties.reply(answer("p1", seq, uint16(40000+seq%1024)))
		case 1: // folded
			ties.forget(p)
		} // else lost: waits until evicted
		if len(ties.probes) > max || len(ties.tuples) > 2*max || len(ties.fifo) > 2*max+64+1 || len(ties.retired) > maxRetired || len(ties.flows) > 2*(max+maxRetired) {
			t.Fatalf("after probe %d: %d probes, %d tuples, %d in the order; want at most %d, %d, %d",
				seq, len(ties.probes), len(ties.tuples), len(ties.fifo), max, 2*max, 2*max+65)
		}
	}
	// The newest lost probe is still tied; an evicted one is not.
	if _, ok := ties.reply(answer("p0", 99_998, uint16(40000+99_998%1024))); !ok {
		t.Error("the newest lost probe's SYN was evicted")
	}
	if _, ok := ties.reply(answer("p0", 2, 40002)); ok {
		t.Error("the oldest lost probe's SYN was kept past the bound")
	}
}

// A re-tied probe keeps its place: the order entry of its first, answered
// tie does not evict it.
func TestTCPTiesRetiedProbe(t *testing.T) {
	ties := newTCPTies(1)
	ties.request(syn("p0", 1, 40001), tiedProbe{0, 1})
	ties.reply(answer("p0", 1, 40001))
	ties.request(syn("p1", 1, 40001), tiedProbe{0, 1}) // the other ring's copy, later
	if _, ok := ties.reply(answer("p1", 1, 40001)); !ok {
		t.Error("a probe tied again after its first tie was answered was lost")
	}
}

func FuzzTCPTies(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		ties := newTCPTies(4)
		for i, op := range ops {
			seq, sport, point := uint32(op>>3), 40000+uint16(op%7), string(rune('a'+i%3))
			switch op % 3 {
			case 0:
				ties.request(syn(point, seq, sport), tiedProbe{int(op & 1), seq})
			case 1:
				ties.reply(answer(point, seq, sport))
			case 2:
				ties.forget(tiedProbe{int(op & 1), seq})
			}
			n := 0
			for _, e := range ties.probes {
				n += len(e.tuples)
			}
			retired := map[tiedProbe]bool{}
			for _, r := range ties.retired {
				retired[r.p] = true
			}
			for f, p := range ties.flows {
				if _, ok := ties.probes[p]; !ok && !retired[p] {
					t.Fatalf("flow %v of a forgotten probe %v", f, p)
				}
			}
			if n != len(ties.tuples) || len(ties.probes) > 4 {
				t.Fatalf("%d tuples listed by probe, %d by tuple; %d probes", n, len(ties.tuples), len(ties.probes))
			}
		}
	})
}

// An answer whose SYN on its tuple comes in later, from another point's
// ring, waits for it; those never tied stay bounded.
func TestTCPTiesHoldUntilTheSYN(t *testing.T) {
	ties := newTCPTies(8)
	s := syn("p2", 3, 40003)
	s.Dst, s.DstPort = netip.MustParseAddr("10.244.2.3"), 8080
	ties.request(s, tiedProbe{0, 3})
	restored := answer("p2", 3, 40003)
	if _, ok := ties.reply(restored); ok {
		t.Fatal("the restored answer matched before any SYN on its tuple")
	}
	if n := ties.hold(restored); n != 0 || ties.waiting() != 1 {
		t.Fatalf("hold gave up on %d, %d waiting; want 0 and 1", n, ties.waiting())
	}
	got := ties.request(syn("p1", 3, 40003), tiedProbe{0, 3})
	if len(got) != 1 || got[0].Point != "p2" || ties.waiting() != 0 {
		t.Errorf("the SYN at p1 released %v, %d still waiting; want the answer at p2, none", got, ties.waiting())
	}
	dropped := 0
	for seq := uint32(100); seq < 100+maxHeld+10; seq++ {
		dropped += ties.hold(answer("p0", seq, 40000))
	}
	if dropped != 10 || ties.waiting() != maxHeld || len(ties.queue) > 2*maxHeld+64 {
		t.Errorf("gave up on %d, %d waiting, %d queued; want 10, %d, at most %d", dropped, ties.waiting(), len(ties.queue), maxHeld, 2*maxHeld+64)
	}
}

// The bridge's ring read last: its SYN (translated) and answer (restored)
// come in after every other point's answer retired the probe.
func TestTCPTiesBridgeReadLast(t *testing.T) {
	ties := newTCPTies(8)
	p := tiedProbe{0, 4}
	ties.request(syn("p1", 4, 40004), p)
	if q, ok := ties.reply(answer("p1", 4, 40004)); !ok || q != p {
		t.Fatal("the answer at p1 did not match")
	}
	s := syn("p2", 4, 40004)
	s.Dst, s.DstPort = netip.MustParseAddr("10.244.2.3"), 8080
	ties.request(s, p)
	if q, ok := ties.reply(answer("p2", 4, 40004)); !ok || q != p {
		t.Errorf("the restored answer at p2, read last: got %v %v, want %v", q, ok, p)
	}
}
