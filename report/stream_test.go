package report

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// streamed feeds probe after probe of rn to acc as a live run does: the
// probe's packets, then its record (with its deadline), and calls each
// with the number of probes fed. It returns, per segment, every duration
// the probes spent there and, per segment, how many were seen at both
// ends: what an exact report would time and count.
func streamed(t *testing.T, acc *Accumulator, rn run, each func(n int)) (durs [][]time.Duration, seen []int) {
	t.Helper()
	path := flannelPath()
	steps := stepsOf(path)
	index := map[stepKey]int{}
	for i, st := range steps {
		index[stepKey{st.point.ID, st.reply}] = i
	}
	durs, seen = make([][]time.Duration, len(steps)-1), make([]int, len(steps)-1)
	for seq := range rn.n {
		p, obs := rn.probe(path, seq)
		at := make([]time.Time, len(steps))
		for _, o := range obs {
			acc.Add(o)
			at[index[stepKey{o.Point, o.IsReply()}]] = o.At
		}
		for k := range durs {
			if !at[k].IsZero() && !at[k+1].IsZero() {
				durs[k] = append(durs[k], at[k+1].Sub(at[k]))
				seen[k]++
			}
		}
		p.Deadline = p.SentAt.Add(time.Second)
		acc.AddProbe(0, p)
		each(seq + 1)
	}
	return durs, seen
}

// TestAccumulatorLongRunIsBounded streams 30,000 probes, 20,000 of them
// beyond ExactProbes: the accumulator holds the first ExactProbes and no
// more than the probes of about two settle periods beyond them at any
// time; counts come out exact, and every percentile within SketchError of
// the exact one (plus the 0.1 us rounding).
func TestAccumulatorLongRunIsBounded(t *testing.T) {
	lost := map[int]int{}
	for seq := 0; seq < 30_000; seq += 97 {
		lost[seq] = segNetwork
	}
	for seq := 13; seq < 30_000; seq += 211 {
		lost[seq] = segBridgeVXLAN
	}
	rn := run{n: 30_000, delays: designDelays(), lostIn: lost,
		missing: map[[2]int]bool{{12_345, 3}: true, {20_001, 6}: true},
		jitter: func(seq, seg int) time.Duration {
			return time.Duration((seq*7919+seg*104729)%1000) * 37 * time.Nanosecond
		}}
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	durs, seen := streamed(t, acc, rn, func(int) {
		in := &acc.arrived[0]
		held = max(held, len(in.recs), in.beyond)
	})
	t.Logf("at most %d probes beyond ExactProbes held at once", held)
	// Probes are 10 ms apart; an answered one settles 1 s after its reply,
	// an unanswered one 1 s after its 1 s deadline.
	if held > 250 {
		t.Errorf("up to %d probes beyond ExactProbes held at once, want at most 250 (two settle periods)", held)
	}
	r, err := acc.Result(Recorded{Probes: []*probe.Result{{RunID: testRun}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probes.Sent != 30_000 || r.Probes.Received != 30_000-len(lost) || r.ExactProbes != ExactProbes || len(r.Timelines) != ExactProbes {
		t.Errorf("got %d sent, %d received, exact_probes %d, %d timelines; want 30000, %d, %d, %d",
			r.Probes.Sent, r.Probes.Received, r.ExactProbes, len(r.Timelines), 30_000-len(lost), ExactProbes, ExactProbes)
	}
	wantLost := map[int]int{}
	for _, seg := range lost {
		wantLost[seg]++
	}
	for i, s := range r.Segments {
		if s.Seen != seen[i] || s.Lost != wantLost[i] {
			t.Errorf("segment %d: seen %d, lost %d; want %d, %d", i, s.Seen, s.Lost, seen[i], wantLost[i])
		}
		slices.Sort(durs[i])
		checkWithin(t, "segment "+s.From+"->"+s.To, s.US, durs[i])
	}
	again, err := acc.Result(Recorded{Probes: []*probe.Result{{RunID: testRun}}})
	if err != nil || !reflect.DeepEqual(again, r) {
		t.Errorf("a second Result differs from the first (err %v)", err)
	}
}

// checkWithin checks each percentile of got against the exact nearest rank
// of sorted: within SketchError, plus the rounding to 0.1 us.
func checkWithin(t *testing.T, what string, got *Dist, sorted []time.Duration) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no distribution", what)
	}
	for _, c := range []struct {
		p   int
		got float64
	}{{50, got.P50}, {90, got.P90}, {99, got.P99}, {100, got.Max}} {
		want := float64(rank(sorted, c.p)) / float64(time.Microsecond)
		if diff := math.Abs(c.got - want); diff > math.Abs(want)*SketchError+0.05+1e-9 {
			t.Errorf("%s p%d: got %.1f us, exact %.3f us: off by more than %.2f%%", what, c.p, c.got, want, 100*SketchError)
		}
	}
	if want := float64(sorted[len(sorted)-1]) / float64(time.Microsecond); math.Abs(got.Max-want) > 0.05+1e-9 {
		t.Errorf("%s: max %.1f us, want %.1f exactly", what, got.Max, want)
	}
}

// TestAccumulatorExactUpToExactProbes: a run of ExactProbes probes has no
// exact_probes field and no exact: line; one more probe adds both.
func TestAccumulatorExactUpToExactProbes(t *testing.T) {
	for _, n := range []int{ExactProbes, ExactProbes + 1} {
		acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
		if err != nil {
			t.Fatal(err)
		}
		streamed(t, acc, run{n: n, delays: designDelays()}, func(int) {})
		r, err := acc.Result(Recorded{Probes: []*probe.Result{{RunID: testRun}}})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if n > ExactProbes {
			want = ExactProbes
		}
		if r.ExactProbes != want || r.Probes.Sent != n {
			t.Errorf("%d probes: exact_probes %d, sent %d; want %d, %d", n, r.ExactProbes, r.Probes.Sent, want, n)
		}
		text, js := render(t, r, FormatText), render(t, r, FormatJSON)
		line := strings.Contains(text, "\nexact: the first 10000 of the 10001 probes are kept whole; percentiles over all of them are within 0.8% (sketches)")
		if field := strings.Contains(js, `"exact_probes": 10000`); line != (want > 0) || field != (want > 0) {
			t.Errorf("%d probes: exact: line %v, exact_probes field %v; want both %v", n, line, field, want > 0)
		}
	}
}

// TestAccumulatorIgnoresPacketsAfterFold: a packet of a probe beyond
// ExactProbes that comes after the probe was folded is counted ignored,
// and changes no segment.
func TestAccumulatorIgnoresPacketsAfterFold(t *testing.T) {
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
	if err != nil {
		t.Fatal(err)
	}
	rn := run{n: ExactProbes + 300, delays: designDelays()}
	streamed(t, acc, rn, func(int) {})
	before, err := acc.Result(Recorded{Probes: []*probe.Result{{RunID: testRun}}})
	if err != nil {
		t.Fatal(err)
	}
	_, obs := rn.probe(flannelPath(), ExactProbes+5) // settled 2.9 s of probes ago
	acc.Add(obs[3])
	after, err := acc.Result(Recorded{Probes: []*probe.Result{{RunID: testRun}}})
	if err != nil {
		t.Fatal(err)
	}
	if after.Probes.Ignored != before.Probes.Ignored+1 || !reflect.DeepEqual(after.Segments, before.Segments) {
		t.Errorf("ignored %d -> %d, segments changed %v; want one more ignored, the same segments",
			before.Probes.Ignored, after.Probes.Ignored, !reflect.DeepEqual(after.Segments, before.Segments))
	}
}

// ownRun is a run of 20 probes of which 3 to 5 were never read by the
// probe socket although their replies reached the pod's interface: probe
// 3's after its deadline, 4's and 5's before it. The socket counted drops
// packets dropped and lateReplies replies read late.
func ownRun(t *testing.T, drops uint64, lateReplies int) *Result {
	t.Helper()
	res, obs := run{n: 20, delays: designDelays()}.build()
	res.SocketDrops, res.LateReplies = drops, lateReplies
	lastAt := map[uint32]time.Time{}
	for _, o := range obs {
		lastAt[seqOf(o)] = o.At // the reply at the pod's interface comes last
	}
	for _, seq := range []uint32{3, 4, 5} {
		p := &res.Probes[seq]
		p.ReceivedAt, p.Deadline = time.Time{}, lastAt[seq].Add(time.Millisecond)
	}
	res.Probes[3].Deadline = lastAt[3].Add(-time.Microsecond)
	r, err := replay(flannelPath(), res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAccumulatorLateAndOwnDrops: a reply that reached the pod's interface
// after the run stopped waiting is late; one before, that the socket never
// read, is cnitrace's own drop as far as the socket's drop counter covers
// it, and the source stack's loss beyond that. Neither late nor own drops
// are lost, and the verdict blames no segment for them.
func TestAccumulatorLateAndOwnDrops(t *testing.T) {
	tests := []struct {
		name                       string
		drops                      uint64
		lateReplies                int
		dropped, stackReply, lostN int
	}{
		{"no socket drops: the stack lost them", 0, 0, 0, 2, 2},
		{"one socket drop", 1, 0, 1, 1, 1},
		{"enough socket drops", 5, 0, 2, 0, 0},
		{"replies read late", 0, 3, 2, 0, 0}, // 3 late reads, 1 of them probe 3's
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ownRun(t, tt.drops, tt.lateReplies)
			if r.Probes.Late != 1 || r.Probes.Dropped != tt.dropped || r.Stack.Reply != tt.stackReply || r.Lost() != tt.lostN {
				t.Errorf("late %d, dropped %d, stack reply %d, lost %d; want 1, %d, %d, %d",
					r.Probes.Late, r.Probes.Dropped, r.Stack.Reply, r.Lost(), tt.dropped, tt.stackReply, tt.lostN)
			}
			for _, s := range r.Segments {
				if s.Lost != 0 {
					t.Errorf("segment %s->%s %s: %d lost, want none", s.From, s.To, s.Direction, s.Lost)
				}
			}
			switch v := r.Verdict; {
			case tt.lostN == 0 && v.Loss != nil:
				t.Errorf("verdict blames %+v for what cnitrace missed: %q", *v.Loss, v.Text)
			case tt.lostN > 0 && (v.Loss == nil || v.Loss.From != "p0" || v.Loss.To != PointSocket || v.Loss.Lost != tt.lostN):
				t.Errorf("verdict loss %+v, want %d in the pod's receive path", v.Loss, tt.lostN)
			case !strings.Contains(v.Text, "1 probe (5%) answered after the timeout: late, not lost"):
				t.Errorf("verdict %q does not name the late probe", v.Text)
			case tt.dropped > 0 && !strings.Contains(v.Text, "not lost but dropped by cnitrace"):
				t.Errorf("verdict %q does not name cnitrace's own drops", v.Text)
			}
			text, js := render(t, r, FormatText), render(t, r, FormatJSON)
			if want := "17 answered, " + itoa(tt.lostN) + " lost, 1 late"; !strings.Contains(text, want) {
				t.Errorf("text report lacks %q:\n%s", want, text)
			}
			if tt.dropped > 0 && (!strings.Contains(text, "dropped by cnitrace (not the path)") || !strings.Contains(js, `"dropped": `+itoa(tt.dropped))) {
				t.Errorf("reports do not count %d dropped by cnitrace:\n%s\n%s", tt.dropped, text, js)
			}
			if !strings.Contains(js, `"late": 1`) {
				t.Errorf("JSON lacks late: 1:\n%s", js)
			}
		})
	}
}

// render renders r in format f, failing the test on error.
func render(t *testing.T, r *Result, f Format) string {
	t.Helper()
	var b strings.Builder
	if err := Render(&b, r, f); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// longRunFeed feeds an Accumulator one probe beyond ExactProbes per call
// to next, as a long run's steady state does: its ten observations, then
// its record. The probes of a window are made once; each call takes the
// next one with its sequence and times moved on, so that feeding
// allocates nothing of its own.
type longRunFeed struct {
	acc     *Accumulator
	window  []longRunProbe
	payload []byte // every observation's, rewritten: the accumulator keeps no payload
	n       int
}

type longRunProbe struct {
	p   probe.Probe
	obs []capture.Observation
}

func newLongRunFeed() *longRunFeed {
	const window = 1000
	r := run{n: window, delays: designDelays()}
	f := &longRunFeed{}
	for seq := range window {
		p, obs := r.probe(flannelPath(), ExactProbes+seq)
		f.window = append(f.window, longRunProbe{p, obs})
	}
	f.acc, _ = NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
	f.payload = make([]byte, len(f.window[0].obs[0].Payload))
	return f
}

func (f *longRunFeed) next() {
	w := &f.window[f.n%len(f.window)]
	shift := time.Duration(f.n/len(f.window)*len(f.window)) * interval
	seq := uint32(ExactProbes + f.n)
	for _, o := range w.obs {
		o.At = o.At.Add(shift)
		copy(f.payload, o.Payload)
		binary.BigEndian.PutUint32(f.payload[12:16], seq) // the token's sequence
		o.Payload = f.payload
		f.acc.Add(o)
	}
	p := w.p
	p.Seq, p.SentAt, p.ReceivedAt = seq, p.SentAt.Add(shift), p.ReceivedAt.Add(shift)
	f.acc.AddProbe(0, p)
	f.n++
}

// check fails t unless the probes fed were folded as they settled.
func (f *longRunFeed) check(t testing.TB) {
	t.Helper()
	if got, min := f.acc.arrived[0].folded, int64(ExactProbes+f.n-2*len(f.window)); f.n > 2*len(f.window) && got < min {
		t.Fatalf("after %d probes the latest folded is %d, want at least %d", f.n, got, min)
	}
}

// TestAccumulatorLongRunAllocatesNothing: beyond ExactProbes, once the
// first probes are folded, a probe's packets and record cost no
// allocation (three each before the spare store: its seen, its sightings,
// its record in the map), and the probes keep being folded.
func TestAccumulatorLongRunAllocatesNothing(t *testing.T) {
	f := newLongRunFeed()
	for range 3000 { // past the first folds: settle is 100 probes at 10 ms
		f.next()
	}
	if n := testing.AllocsPerRun(2000, f.next); n != 0 {
		t.Errorf("got %v allocations per probe, want 0", n)
	}
	f.check(t)
	if got, want := f.acc.arrived[0].sent, f.n; got != want {
		t.Errorf("got %d records counted, want %d", got, want)
	}
}
