package report

import (
	"testing"

	"github.com/cnitrace/cnitrace/probe"
)

// TestExactStoreTakesItsRoomEarly: a short run's exact store holds
// exactFirst sequences; the first later one gives it room for all
// ExactProbes, and from then on it is never reallocated: a long run's
// exact probes stop growing the heap after about a tenth of them, not with
// the last (the resident set is flat after them, docs/benchmarks.md
// section 5). What it holds survives the move.
func TestExactStoreTakesItsRoomEarly(t *testing.T) {
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
	if err != nil {
		t.Fatal(err)
	}
	in := &acc.arrived[0]
	var rows *sighting
	streamed(t, acc, run{n: ExactProbes + 500, delays: designDelays()}, func(n int) {
		switch {
		case n == exactFirst:
			if got := len(in.exact.seen); got != exactFirst {
				t.Errorf("after %d probes the store holds %d sequences, want %d", n, got, exactFirst)
			}
		case n == exactFirst+1:
			if got := len(in.exact.seen); got != ExactProbes {
				t.Errorf("after %d probes the store holds %d sequences, want %d", n, got, ExactProbes)
			}
			rows = &in.exact.rows[0]
		case n > exactFirst+1 && &in.exact.rows[0] != rows:
			t.Fatalf("the store was reallocated after %d probes", n)
		}
	})
	for _, seq := range []uint32{0, exactFirst - 1, exactFirst, ExactProbes - 1} {
		p, ok := in.record(seq)
		s := in.lookup(seq)
		if !ok || p.Seq != seq || s == nil || len(s.at) != len(acc.steps) || !s.at[0].ok || s.obs != len(acc.steps) {
			t.Errorf("sequence %d: record %v (seq %d), seen %+v; want its record and all %d steps", seq, ok, p.Seq, s, len(acc.steps))
		}
	}
	if len(in.bySeq) > 500 || len(in.recs) > 500 {
		t.Errorf("%d seen and %d records beyond ExactProbes, want at most the 500 streamed", len(in.bySeq), len(in.recs))
	}
}

// TestExactStoreRecordsWithoutSink: records of a run without a Sink (in
// the probe.Result given to Result) count as if added, the first of a
// sequence only, and claim the observations of their sequence.
func TestExactStoreRecordsWithoutSink(t *testing.T) {
	res, obs := run{n: 40, delays: designDelays()}.build()
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		acc.Add(o)
	}
	for _, p := range res.Probes[:10] {
		acc.AddProbe(0, p)
	}
	given := &probe.Result{RunID: testRun, Probes: append(res.Probes[5:], res.Probes[20])} // 5-9 added, 20 twice
	r, err := acc.Result(Recorded{Probes: []*probe.Result{given}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probes.Sent != 40 || r.Probes.Received != 40 || r.Probes.Ignored != 0 || len(r.Timelines) != 40 {
		t.Errorf("sent %d, received %d, ignored %d, %d timelines; want 40, 40, 0, 40", r.Probes.Sent, r.Probes.Received, r.Probes.Ignored, len(r.Timelines))
	}
	if got := len(acc.arrived[0].exact.seen); got != exactFirst {
		t.Errorf("the store holds %d sequences, want %d", got, exactFirst)
	}
}
