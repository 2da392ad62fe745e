//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/cnitrace-bench/nfqdelay"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// The network's hold of a probe is its request's and its reply's; a probe
// the delay line saw one way only has none.
func TestWireHolds(t *testing.T) {
	ms := time.Millisecond
	s := lab.WireStats{
		Request: lab.LaneStats{MaxLate: 70 * time.Microsecond, Holds: []lab.ProbeHold{
			{RunID: 1, Seq: 0, Hold: ms + 10*time.Microsecond}, {RunID: 1, Seq: 1, Hold: ms + 30*time.Microsecond}, {RunID: 1, Seq: 2, Hold: ms + 70*time.Microsecond}}},
		Reply: lab.LaneStats{Holds: []lab.ProbeHold{
			{RunID: 1, Seq: 0, Reply: true, Hold: 40 * time.Microsecond}, {RunID: 1, Seq: 2, Reply: true, Hold: 50 * time.Microsecond}}},
	}
	late := wireHolds(s, ms)
	if len(late.Holds) != 2 || late.Holds[probeKey{1, 0}] != 1050 || late.Holds[probeKey{1, 2}] != 1120 {
		t.Errorf("holds %v, want seq 0 1050 us and seq 2 1120 us", late.Holds)
	}
	if late.Typical != 30*time.Microsecond || late.Max != 70*time.Microsecond || len(late.StampHolds) != 0 {
		t.Errorf("got %+v, want typically 30 us late, at most 70", late)
	}
}

// The delayer's holds run from the arrival in user space and, for the
// packets that had one, from the skb's stamp; only the site's direction
// counts.
func TestForwardHolds(t *testing.T) {
	ms := time.Millisecond
	tok := func(seq uint32) probe.Token { return probe.Token{RunID: 7, Seq: seq} }
	s := nfqdelay.Stats{Holds: []nfqdelay.Hold{
		{Token: tok(0), Hold: ms + time.Microsecond, SinceStamp: ms + 51*time.Microsecond},
		{Token: tok(1), Hold: ms + 3*time.Microsecond, SinceStamp: ms + 83*time.Microsecond},
		{Token: tok(0), Reply: true, Hold: ms},
	}}
	late := forwardHolds(s, ms, false)
	if len(late.StampHolds) != 2 || late.StampHolds[probeKey{7, 1}] != 1083 || len(late.Holds) != 2 || late.Holds[probeKey{7, 1}] != 1003 {
		t.Errorf("requests: got %+v, want 2 holds, seq 1 1003 us, from the stamp 1083 us", late)
	}
	if late.Typical != time.Microsecond { // the lower of two, nearest rank
		t.Errorf("typical lateness %v, want 1us (from the user-space holds)", late.Typical)
	}
	late = forwardHolds(s, ms, true)
	if len(late.StampHolds) != 0 || len(late.Holds) != 1 || late.Holds[probeKey{7, 0}] != 1000 {
		t.Errorf("replies, no stamp: got %+v, want 1 hold of 1000 us from user space", late)
	}
}

// stampedReport is a report of the steps p0 TX, p1 RX, p2 RX, p3 TX with
// the segments' p50s given (0: not separable) and each probe's stamps at
// the steps, in us from 1 s.
func stampedReport(t *testing.T, p50s [3]float64, probes [][4]float64) report {
	t.Helper()
	var segs []map[string]any
	for i, p := range p50s {
		s := map[string]any{"from": fmt.Sprintf("p%d", i), "to": fmt.Sprintf("p%d", i+1), "direction": "request", "separable": p != 0}
		if p != 0 {
			s["us"] = map[string]float64{"p50": p}
		}
		segs = append(segs, s)
	}
	var ps []map[string]any
	for seq, at := range probes {
		ns := make([]int64, len(at))
		for i, u := range at {
			ns[i] = 1e9 + int64(u*1000)
		}
		ps = append(ps, map[string]any{"seq": seq, "at": ns})
	}
	steps := []map[string]any{{"point": "p0"}, {"point": "p1"}, {"point": "p2"}, {"point": "p3"}}
	b, err := json.Marshal(map[string]any{"segments": segs, "stamps": map[string]any{
		"steps": steps, "runs": []map[string]any{{"run_id": "0000000000000007", "probes": ps}}}})
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := jsonInto(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// A segment the report times from an earlier step in one run (a
// non-separable segment before it was merged in) and from its own in the
// other moves by its own spans, on the probes whose stamps are their own
// at both ends; one both time alike moves by the report's p50s.
func TestCompareSegmentsLikeForLike(t *testing.T) {
	var base, with [][4]float64
	for i := range 24 {
		if i < 13 { // the stamp at p2 is p1's: the span to p3 is p1->p3
			base = append(base, [4]float64{0, 5, 5, 32})
		} else {
			base = append(base, [4]float64{0, 5, 17, 32})
		}
		with = append(with, [4]float64{0, 6, 18, 34})
	}
	b := stampedReport(t, [3]float64{5, 0, 27}, base) // p2->p3 merged from p1
	w := stampedReport(t, [3]float64{6, 12, 16}, with)
	none := site{name: "none", holds: func(segment, map[string]string) bool { return false }}
	row, moves := compareSegments(none, b, w)
	if got := moves["request p2->p3"]; got != 1 { // own spans: median 16 - median 15
		t.Errorf("p2->p3 moved %.1f us, want 1 (its own spans, not 16 - 27 = -11 of the report's p50s)", got)
	}
	if got := moves["request p0->p1"]; got != 1 {
		t.Errorf("p0->p1 moved %.1f us, want 1 (the report's p50s)", got)
	}
	if _, ok := moves["request p1->p2"]; ok || row.OtherFromStamps != 1 {
		t.Errorf("moves %v, %d from stamps; want none for p1->p2 (not separable in the base), 1 from stamps", moves, row.OtherFromStamps)
	}
}
