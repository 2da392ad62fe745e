package report

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// TestAccumulatorConcurrentMatchesSequential feeds the same observations
// to an Accumulator from one goroutine per capture point, as the capture
// readers do, and expects exactly what adding the whole slice in order
// gives.
func TestAccumulatorConcurrentMatchesSequential(t *testing.T) {
	rn := run{n: 40, delays: designDelays(), lostIn: map[int]int{3: 4, 7: 6},
		missing: map[[2]int]bool{{5, 2}: true}, jitter: func(seq, seg int) time.Duration {
			return time.Duration(seq%5*seg) * time.Microsecond
		}}
	probes, obs := rn.build()
	want, err := replay(flannelPath(), probes, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}

	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: probes.RunID}})
	if err != nil {
		t.Fatal(err)
	}
	byPoint := map[string][]capture.Observation{}
	for _, o := range obs {
		byPoint[o.Point] = append(byPoint[o.Point], o)
	}
	var wg sync.WaitGroup
	for _, list := range byPoint {
		wg.Go(func() {
			for _, o := range list {
				acc.Add(o)
			}
		})
	}
	wg.Wait()
	got, err := acc.Result(Recorded{Probes: []*probe.Result{probes}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("concurrent Accumulator differs from sequential adds:\ngot  %+v %+v\nwant %+v %+v", got.Probes, got.Segments, want.Probes, want.Segments)
	}
}

func TestNewAccumulatorRejectsBadPaths(t *testing.T) {
	one := []ProbeSource{{RunID: 1}}
	if _, err := NewAccumulator(nil, one); err == nil {
		t.Error("nil path accepted")
	}
	p := flannelPath()
	p.Points[1].ID = p.Points[0].ID
	if _, err := NewAccumulator(p, one); err == nil {
		t.Error("duplicate point IDs accepted")
	}
	acc, _ := NewAccumulator(flannelPath(), one)
	if _, err := acc.Result(Recorded{}); err == nil {
		t.Error("Result without a probe result accepted")
	}
}

// TestNewAccumulatorRejectsBadSources: the report must be able to tell the
// sources' packets apart and to say where the baseline was sent from.
func TestNewAccumulatorRejectsBadSources(t *testing.T) {
	node := ProbeSource{RunID: baselineRun, NetNS: hostNS}
	tests := []struct {
		name    string
		sources []ProbeSource
		want    string
	}{
		{"none", nil, "no probe source"},
		{"no run id", []ProbeSource{{}}, "probe source 0 has no run id"},
		{"a run id twice", []ProbeSource{{RunID: testRun}, {RunID: testRun, NetNS: hostNS}}, "probe source 1: run id 0x1122334455667788 is another source's too"},
		{"baseline without its netns", []ProbeSource{{RunID: testRun}, {RunID: baselineRun}}, "probe source 1 (the baseline) has no netns"},
		{"traced source elsewhere", []ProbeSource{{RunID: testRun, NetNS: hostNS}, node}, "traced source in net:[4026531840], but the path starts in net:[4026532301]"},
		{"three", []ProbeSource{{RunID: testRun}, node, {RunID: 3, NetNS: hostNS}}, "3 probe sources: the report takes the traced one and at most a baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc, err := NewAccumulator(flannelPath(), tt.sources)
			if err == nil || acc != nil {
				t.Fatalf("got %v, %v, want error %q", acc, err, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got error %q, want %q", got, tt.want)
			}
		})
	}
	for _, ok := range [][]ProbeSource{{{RunID: testRun}}, {{RunID: testRun, NetNS: podNS}, node}} {
		if _, err := NewAccumulator(flannelPath(), ok); err != nil {
			t.Errorf("NewAccumulator(%+v): got %v, want none", ok, err)
		}
	}
}

// TestAccumulatorResultChecksProbes: Result takes one probe result per
// source, each of its source's run.
func TestAccumulatorResultChecksProbes(t *testing.T) {
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}, {RunID: baselineRun, NetNS: hostNS}})
	if err != nil {
		t.Fatal(err)
	}
	pod, node := &probe.Result{RunID: testRun}, &probe.Result{RunID: baselineRun}
	tests := []struct {
		name   string
		probes []*probe.Result
		want   string
	}{
		{"one short", []*probe.Result{pod}, "got 1 probe results for 2 probe sources"},
		{"nil", []*probe.Result{pod, nil}, "no probe result for probe source 1"},
		{"swapped", []*probe.Result{node, pod}, "probe result 0 is of run 0x99aabbccddeeff00, its source's is 0x1122334455667788"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := acc.Result(Recorded{Probes: tt.probes})
			if err == nil || r != nil {
				t.Fatalf("got %v, %v, want error %q", r, err, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got error %q, want %q", got, tt.want)
			}
		})
	}
	if r, err := acc.Result(Recorded{Probes: []*probe.Result{pod, node}}); err != nil || r.Baseline == nil {
		t.Errorf("got %v, %v, want a result with a baseline", r, err)
	}
}

// TestAccumulatorResultInterrupted: an interrupted run gives a Result marked
// incomplete, and nothing else changes.
func TestAccumulatorResultInterrupted(t *testing.T) {
	res, obs := run{n: 5, delays: designDelays(), lostIn: map[int]int{4: -1}}.build()
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: testRun}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		acc.Add(o)
	}
	whole, err := acc.Result(Recorded{Probes: []*probe.Result{res}})
	if err != nil {
		t.Fatal(err)
	}
	cut, err := acc.Result(Recorded{Probes: []*probe.Result{res}, Interrupted: true})
	if err != nil {
		t.Fatal(err)
	}
	if whole.Incomplete || !cut.Incomplete {
		t.Errorf("got incomplete %v without and %v with Interrupted, want false and true", whole.Incomplete, cut.Incomplete)
	}
	cut.Incomplete = false
	if !reflect.DeepEqual(cut, whole) {
		t.Errorf("Interrupted changed more than Incomplete:\ngot  %s\nwant %s", jsonOf(t, cut), jsonOf(t, whole))
	}
}

// TestAccumulatorStepOf checks that stepOf finds every step of the
// timeline where buildSteps put it, and no step for a point off the path.
func TestAccumulatorStepOf(t *testing.T) {
	acc, err := NewAccumulator(flannelPath(), []ProbeSource{{RunID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(acc.steps), 2*len(flannelPath().Points); got != want {
		t.Fatalf("got %d steps, want %d", got, want)
	}
	for i, s := range acc.steps {
		if got, ok := acc.stepOf(s.point.ID, s.reply); !ok || got != i {
			t.Errorf("stepOf(%s, reply %v) = %d, %v; want %d, true", s.point.ID, s.reply, got, ok, i)
		}
	}
	for _, reply := range []bool{false, true} {
		if i, ok := acc.stepOf("nowhere", reply); ok {
			t.Errorf("stepOf(nowhere, reply %v) = %d, want none", reply, i)
		}
	}
}
