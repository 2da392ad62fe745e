package report

import (
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// TestRecorderTiesTCPAnswers: a listener's SYN-ACKs, which carry no
// token, are tied to the SYN seen at their point (by the reversed tuple
// and the acknowledgement's low 15 bits) and recorded as the probe's
// reply, at every reply step, even one whose answer came in before any
// SYN; an answer no SYN was seen for is counted, not placed.
func TestRecorderTiesTCPAnswers(t *testing.T) {
	rec, err := NewRecorder(flannelPath(), RoleListen)
	if err != nil {
		t.Fatal(err)
	}
	steps := rec.Stamps("").Steps
	n := len(steps) / 2
	const run, seq, sport = 0xabcd, 40007, 41000
	at := func(i int) time.Time { return runStart.Add(time.Duration(i) * time.Microsecond) }
	var synObs, ans []capture.Observation
	for i, st := range steps {
		if st.Reply {
			o := answer(st.Point, seq, sport)
			o.Dir, o.At = st.Dir, at(i)
			ans = append(ans, o)
			continue
		}
		o := syn(st.Point, seq, sport)
		o.Dir, o.At, o.Token = st.Dir, at(i), probe.Payload{RunID: run, Seq: seq}.Marshal(capture.TokenLen)
		synObs = append(synObs, o)
	}
	// The reply at the uplink is read first (its ring before the others'),
	// then every SYN, then the other replies.
	rec.Add(ans[n-1])
	for _, o := range synObs {
		rec.Add(o)
	}
	for _, o := range ans[:n-1] {
		rec.Add(o)
	}
	stray := answer("p0", seq, sport+1) // no SYN on that port
	stray.Dir = steps[n].Dir
	rec.Add(stray)
	rst := answer("p2", seq, sport) // a retransmitted answer: the earliest stamp stays
	rst.Dir, rst.At = steps[len(steps)-3].Dir, at(100)
	rec.Add(rst)

	s := rec.Stamps("n2")
	if len(s.Runs) != 1 || len(s.Runs[0].Probes) != 1 {
		t.Fatalf("runs %+v, want one probe of run %x", s.Runs, run)
	}
	p := s.Runs[0].Probes[0]
	if p.Seq != seq {
		t.Errorf("seq %d, want %d", p.Seq, seq)
	}
	for i, ns := range p.At {
		if want := at(i).UnixNano(); ns != want {
			t.Errorf("step %d (%s %s reply=%v): stamp %d, want %d", i, steps[i].Point, steps[i].Dir, steps[i].Reply, ns, want)
		}
	}
	if s.Untokened != 1 {
		t.Errorf("untokened %d, want 1 (the answer on a port no SYN used)", s.Untokened)
	}
}
