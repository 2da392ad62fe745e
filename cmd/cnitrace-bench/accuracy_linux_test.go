//go:build linux

package main

import (
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
