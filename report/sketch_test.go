package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSketchRankWithinError compares every percentile the report prints
// (and a few more) with the exact nearest rank over the same samples, for
// distributions like the report's: tight and jittery segment times,
// long-tailed RTTs, two modes, clock artefacts below zero, and values in
// the exact range.
func TestSketchRankWithinError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	us := float64(time.Microsecond)
	dists := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 5-30 us", func() time.Duration { return time.Duration((5 + 25*rng.Float64()) * us) }},
		{"lognormal RTT around 120 us", func() time.Duration { return time.Duration(120 * us * math.Exp(0.6*rng.NormFloat64())) }},
		{"two modes, 100 us and 5 ms", func() time.Duration {
			if rng.IntN(10) == 0 {
				return time.Duration(5000*us + 200*us*rng.Float64())
			}
			return time.Duration(100*us + 10*us*rng.Float64())
		}},
		{"around zero, some negative", func() time.Duration { return time.Duration(2 * us * rng.NormFloat64()) }},
		{"exact range, 0-63 ns", func() time.Duration { return time.Duration(rng.IntN(64)) }},
		{"seconds", func() time.Duration { return time.Duration(rng.Float64() * 3 * float64(time.Second)) }},
	}
	for _, d := range dists {
		t.Run(d.name, func(t *testing.T) {
			for _, n := range []int{1, 2, 7, 100, 10_001, 200_000} {
				var sk sketch
				vals := make([]time.Duration, n)
				for i := range vals {
					vals[i] = d.gen()
					sk.add(vals[i])
				}
				slices.Sort(vals)
				for _, p := range []int{0, 1, 10, 50, 90, 99, 100} {
					want, got := rank(vals, p), sk.rank(p)
					if diff := math.Abs(float64(got - want)); diff > math.Abs(float64(want))*SketchError {
						t.Errorf("n=%d p%d: got %v, exact %v: off by %.3f%%, bound %.3f%%", n, p, got, want, 100*diff/math.Abs(float64(want)), 100*SketchError)
					}
				}
				if sk.n != uint64(n) || sk.min != vals[0] || sk.max != vals[n-1] {
					t.Errorf("n=%d: got count %d, min %v, max %v; want %d, %v, %v", n, sk.n, sk.min, sk.max, n, vals[0], vals[n-1])
				}
			}
		})
	}
}

// TestSketchMergeEqualsOne: two sketches merged give what one sketch of
// all the samples gives, and a clone is independent of its original.
func TestSketchMergeEqualsOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all sketch
	for i := range 5000 {
		d := time.Duration(rng.Int64N(int64(10*time.Millisecond))) - time.Millisecond
		all.add(d)
		if i%3 == 0 {
			a.add(d)
		} else {
			b.add(d)
		}
	}
	c := a.clone()
	c.merge(&b)
	for p := range 101 {
		if got, want := c.rank(p), all.rank(p); got != want {
			t.Errorf("p%d: merged %v, one sketch %v", p, got, want)
		}
	}
	if a.n != 1667 {
		t.Errorf("merging into a clone changed the original: %d samples, want 1667", a.n)
	}
}

// TestSketchEdges: an empty sketch, the extremes of int64, the exact
// range, and magnitudes beyond 2^sketchTop, which share the last bucket
// and are only bounded by it.
func TestSketchEdges(t *testing.T) {
	var empty sketch
	if got := empty.rank(50); got != 0 {
		t.Errorf("empty sketch: p50 %v, want 0", got)
	}
	vals := []time.Duration{math.MinInt64, -1, 0, 63, 64, 1 << 44, 1 << 50, math.MaxInt64} // sorted
	var s sketch
	for _, d := range vals {
		s.add(d)
	}
	// 8 samples: p k/8*100 is the k-th; the first and last are min and max.
	for k, want := range map[int]time.Duration{1: math.MinInt64, 2: -1, 3: 0, 4: 63, 5: 64, 8: math.MaxInt64} {
		if got := s.rank(k * 100 / 8); got != want {
			t.Errorf("sample %d (p%d): got %v, want %v exactly", k, k*100/8, got, want)
		}
	}
	if got, want := s.rank(6*100/8), time.Duration(1<<44); math.Abs(float64(got-want)) > float64(want)*SketchError {
		t.Errorf("sample 6 (p75): got %v, want %v within %.2f%%", got, want, 100*SketchError)
	}
	if got := s.rank(7 * 100 / 8); got < 1<<44 {
		t.Errorf("sample 7 (2^50 ns, past the last octave): got %v, want it in the last bucket, from 2^44 ns", got)
	}
}

// TestSketchRowsAreBounded: whatever is added, a sketch allocates at most
// one row per octave and side.
func TestSketchRowsAreBounded(t *testing.T) {
	var s sketch
	for e := range 64 {
		s.add(time.Duration(uint64(1)<<e - 1))
		s.add(-time.Duration(uint64(1)<<e - 1))
	}
	rows := 0
	for r := range sketchOctaves {
		if s.neg[r] != nil {
			rows++
		}
		if s.pos[r] != nil {
			rows++
		}
	}
	if rows > 2*sketchOctaves {
		t.Errorf("%d rows allocated, want at most %d", rows, 2*sketchOctaves)
	}
}
