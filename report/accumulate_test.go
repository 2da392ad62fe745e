package report

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
)

// TestAccumulatorConcurrentMatchesCorrelate feeds the same observations to
// an Accumulator from one goroutine per capture point, as the capture
// readers do, and expects exactly what Correlate gives for the whole slice.
func TestAccumulatorConcurrentMatchesCorrelate(t *testing.T) {
	rn := run{n: 40, delays: designDelays(), lostIn: map[int]int{3: 4, 7: 6},
		missing: map[[2]int]bool{{5, 2}: true}, jitter: func(seq, seg int) time.Duration {
			return time.Duration(seq%5*seg) * time.Microsecond
		}}
	probes, obs := rn.build()
	want, err := Correlate(flannelPath(), probes, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}

	acc, err := NewAccumulator(flannelPath(), probes.RunID)
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
	got, err := acc.Result(probes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Segments, want.Segments) || got.Probes != want.Probes || !reflect.DeepEqual(got.Verdict, want.Verdict) {
		t.Errorf("concurrent Accumulator differs from Correlate:\ngot  %+v %+v\nwant %+v %+v", got.Probes, got.Segments, want.Probes, want.Segments)
	}
}

func TestNewAccumulatorRejectsBadPaths(t *testing.T) {
	if _, err := NewAccumulator(nil, 1); err == nil {
		t.Error("nil path accepted")
	}
	p := flannelPath()
	p.Points[1].ID = p.Points[0].ID
	if _, err := NewAccumulator(p, 1); err == nil {
		t.Error("duplicate point IDs accepted")
	}
	acc, _ := NewAccumulator(flannelPath(), 1)
	if _, err := acc.Result(nil, nil); err == nil {
		t.Error("Result(nil) accepted")
	}
}
