package report

import (
	"net/netip"
	"slices"
	"strings"
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

// sameNode makes the listen files of two pods on one node (a Service's
// backends there) what listen writes: both listen on the node's uplink,
// overlay and bridge, so each file holds every probe's stamps at those
// points, and only its own pod's probes past them.
func sameNode(t *testing.T, ls map[string]*Stamps, x, y string) {
	t.Helper()
	shared := []int{0, 1, 2, 7, 8, 9} // the uplink, the overlay, the bridge, both ways
	add := func(to, from *Stamps) {
		have := map[uint32]bool{}
		for _, p := range to.Runs[0].Probes {
			have[p.Seq] = true
		}
		for _, p := range from.Runs[0].Probes {
			if have[p.Seq] {
				t.Fatalf("probe %d in both files before sharing", p.Seq)
			}
			q := ProbeStamp{Seq: p.Seq, At: make([]int64, len(p.At))}
			for _, i := range shared {
				q.At[i] = p.At[i]
			}
			to.Runs[0].Probes = append(to.Runs[0].Probes, q)
		}
	}
	a, b := ls[x], ls[y]
	ca, cb := *a, *b
	ca.Runs = []StampRun{{RunID: a.Runs[0].RunID, Probes: slices.Clone(a.Runs[0].Probes)}}
	cb.Runs = []StampRun{{RunID: b.Runs[0].RunID, Probes: slices.Clone(b.Runs[0].Probes)}}
	add(&ca, b)
	add(&cb, a)
	ca.Node, cb.Node = "node2", "node2"
	ls[x], ls[y] = &ca, &cb
}

// TestMergeListenersOneNode: a Service's two backends on one node, a
// listener each: every probe's far half comes from the listener of the pod
// it reached, though both files hold it at the node's shared points; no
// disagreement; each report says which share it holds. With the pod's
// listener alone, the sibling's probes are said to have no listener, not
// lost on the way to the pod.
func TestMergeListenersOneNode(t *testing.T) {
	const pod, sib = "10.244.2.2", "10.244.2.3"
	s := twoNodes{n: 40, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() },
		backend: func(seq int) string {
			if seq%4 == 0 {
				return sib
			}
			return pod
		}}
	src, ls := s.record(t)
	sameNode(t, ls, pod, sib)
	rs, err := Merge(src, ls[pod], ls[sib])
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("got %d reports, want 2", len(rs))
	}
	for i, want := range []int{30, 10} {
		m := rs[i].Merge
		if m.Probes != want || m.Matched != want || len(m.Disagreements) != 0 {
			t.Errorf("report %d (node %s): %d probes, %d matched, disagreements %+v; want %d", i, m.Nodes[1].ID, m.Probes, m.Matched, m.Disagreements, want)
		}
		for _, seg := range rs[i].Segments {
			if seg.Seen != want || seg.Lost != 0 {
				t.Errorf("report %d: segment %s->%s seen %d lost %d, want %d and 0", i, seg.From, seg.To, seg.Seen, seg.Lost, want)
			}
		}
		if got := m.Targets; len(got) != 2 || got[0] != (TargetShare{"b", pod, 30}) || got[1] != (TargetShare{"c", sib, 10}) {
			t.Errorf("report %d: targets %+v", i, got)
		}
	}
	var b strings.Builder
	if err := Render(&b, rs[1], FormatText); err != nil {
		t.Fatal(err)
	}
	if want := "targets: this report holds the 10 probes of the run's 40 that went to c (pod 10.244.2.3); b (pod 10.244.2.2) got 30, in its own report"; !strings.Contains(b.String(), want) {
		t.Errorf("the sibling's report does not say %q:\n%s", want, b.String())
	}

	alone, err := Merge(src, ls[pod])
	if err != nil {
		t.Fatal(err)
	}
	m := alone[0].Merge
	if m.Probes != 30 || m.Matched != 30 || len(m.Disagreements) != 1 || m.Disagreements[0].Kind != DisagreeNoListener || m.Disagreements[0].Probes != 10 {
		t.Errorf("the pod's listener alone: %d probes, %d matched, disagreements %+v; want 30, 30 and the sibling's 10 without a listener", m.Probes, m.Matched, m.Disagreements)
	}
	for _, seg := range alone[0].Segments {
		if seg.Lost != 0 {
			t.Errorf("the pod's listener alone: segment %s->%s lost %d", seg.From, seg.To, seg.Lost)
		}
	}

	// Two nodes' files both seeing a probe at their pods do disagree.
	other := *ls[sib]
	other.Node = "node3"
	own := slices.DeleteFunc(slices.Clone(ls[sib].Runs[0].Probes), func(p ProbeStamp) bool { return !reachedPod(&p) })
	other.Runs = []StampRun{{RunID: ls[sib].Runs[0].RunID, Probes: append(own, ls[pod].Runs[0].Probes[1])}}
	rs, err = Merge(src, ls[pod], &other)
	if err != nil {
		t.Fatal(err)
	}
	if d := rs[0].Merge.Disagreements; len(d) != 1 || d[0].Kind != DisagreeTwoTargets || d[0].Probes != 1 {
		t.Errorf("a probe seen at two nodes' pods: disagreements %+v, want one %q", d, DisagreeTwoTargets)
	}
}

// TestMergeOneListenerNoneReachedPod: with one listener whose pod no probe
// reached (every request lost on its node, behind a DNAT there, so the
// source's destination is not the pod's address), the probes are still
// its, lost where they were lost, not "without a listener".
func TestMergeOneListenerNoneReachedPod(t *testing.T) {
	s := twoNodes{n: 20, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() },
		drop: func(seq, k int) bool { return k >= mReqWire+3 }} // seen at node 2's uplink and overlay only
	src, ls := s.record(t)
	l := *ls["10.244.2.2"]
	path := *l.Path
	path.Source.Addr = netip.MustParseAddr("10.244.2.99") // the pod's address is not the source's destination
	l.Path = &path
	r := mergeOne(t, src, &l)
	m := r.Merge
	if m.Probes != 20 || len(m.Disagreements) != 0 {
		t.Errorf("%d probes, disagreements %+v; want 20 and none", m.Probes, m.Disagreements)
	}
	lost := 0
	for _, seg := range r.Segments {
		lost += seg.Lost
	}
	if lost != 20 {
		t.Errorf("%d probes lost, want every one, on node 2", lost)
	}
}
