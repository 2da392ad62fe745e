package report

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// synthetic returns n probes over span seconds between two clocks whose
// offset is theta0 + drift*x ns (drift in ns per second), with one-way
// wires of req and rep ns plus exponential jitter of mean jitter ns; every
// delayEvery-th probe's request is delay ns later still (0: none).
func synthetic(rng *rand.Rand, n int, span, theta0, drift, req, rep, jitter, delay float64, delayEvery int) []clockSample {
	s := make([]clockSample, n)
	for i := range s {
		x := span * float64(i) / float64(max(n-1, 1))
		theta := theta0 + drift*x
		dq := req + rng.ExpFloat64()*jitter
		dp := rep + rng.ExpFloat64()*jitter
		if delayEvery > 0 && i%delayEvery == 0 {
			dq += delay
		}
		s[i] = clockSample{x: x, f: dq + theta, r: dp - theta}
	}
	return s
}

func TestFitClockContainsTruth(t *testing.T) {
	tests := []struct {
		name                          string
		n                             int
		span, theta0, drift, req, rep float64
		delay                         float64
		every                         int
		wantDrift                     bool
	}{
		{"constant offset, symmetric", 100, 1, 1e9, 0, 30_000, 30_000, 0, 0, false},
		{"constant offset, asymmetric", 100, 1, -1e9, 0, 10_000, 50_000, 0, 0, false},
		{"negative offset, a third delayed", 300, 1.5, -3e6, 0, 30_000, 30_000, 2e6, 3, false},
		{"50 ppm drift over 10 s", 500, 10, 1e9, 50_000, 30_000, 30_000, 0, 0, true},
		{"-50 ppm drift, asymmetric, a third delayed", 500, 5, -1e9, -50_000, 20_000, 40_000, 3e6, 3, true},
		{"no drift, a drift term fitted over 3 s", 150, 3, 12345, 0, 30_000, 30_000, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tt.n)))
			samples := synthetic(rng, tt.n, tt.span, tt.theta0, tt.drift, tt.req, tt.rep, 5_000, tt.delay, tt.every)
			c, err := fitClock(samples)
			if err != nil {
				t.Fatal(err)
			}
			if c.drift != tt.wantDrift {
				t.Errorf("drift fitted: %v, want %v", c.drift, tt.wantDrift)
			}
			for _, s := range samples {
				truth := tt.theta0 + tt.drift*s.x
				est, half := c.offset(s.x), c.bound
				if math.Abs(truth-est) > half+1 { // 1 ns for rounding
					t.Fatalf("at %.3fs: true offset %.0f ns outside the estimate %.0f +/- %.0f ns", s.x, truth, est, half)
				}
				if s.f-est < -half-1 || s.r+est < -half-1 {
					t.Fatalf("at %.3fs: a one-way wire below minus the bound: req %.0f rep %.0f, bound %.0f", s.x, s.f-est, s.r+est, half)
				}
			}
			// The bound is about half the fastest round trip: never
			// wider than the slowest probe's.
			if got, limit := c.bound, (tt.req+tt.rep)/2+30_000; got > limit {
				t.Errorf("bound %.0f ns, want at most %.0f", got, limit)
			}
			t.Logf("offset %.0f ns (true %.0f at 0), drift %.0f ns/s (true %.0f), bound +/-%.0f ns", c.offset(0), tt.theta0, c.b, tt.drift, c.bound)
		})
	}
}

func TestFitClockInconsistent(t *testing.T) {
	// A clock stepped by 1 ms in the middle of a short run: f and r say
	// contradictory things.
	rng := rand.New(rand.NewPCG(2, 2))
	s := synthetic(rng, 100, 1, 0, 0, 30_000, 30_000, 1_000, 0, 0)
	for i := 50; i < len(s); i++ {
		s[i].f += 1e6
		s[i].r -= 1e6
	}
	if _, err := fitClock(s); !errors.Is(err, ErrClockInconsistent) {
		t.Errorf("got %v, want ErrClockInconsistent", err)
	}
	if _, err := fitClock(nil); err == nil {
		t.Error("no samples: got no error")
	}
}

func TestFitClockShiftInvariant(t *testing.T) {
	// Shifting B's clock by a second and adding 50 ppm moves the estimate
	// by exactly as much: the one-way wires stay where they were.
	rng := rand.New(rand.NewPCG(3, 3))
	base := synthetic(rng, 300, 3, 0, 0, 20_000, 40_000, 5_000, 2e6, 3)
	shifted := make([]clockSample, len(base))
	for i, s := range base {
		d := 1e9 + 50_000*s.x
		shifted[i] = clockSample{x: s.x, f: s.f + d, r: s.r - d}
	}
	a, err := fitClock(base)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fitClock(shifted)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range base {
		ra, rb := s.f-a.offset(s.x), shifted[i].f-b.offset(s.x)
		if math.Abs(ra-rb) > a.bound {
			t.Fatalf("probe %d: request wire %.0f ns unshifted, %.0f shifted: more than the bound %.0f apart", i, ra, rb, a.bound)
		}
	}
}

func BenchmarkFitClock(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	s := synthetic(rng, ExactProbes, 60, 1e9, 20_000, 30_000, 30_000, 5_000, 0, 0)
	for b.Loop() {
		if _, err := fitClock(s); err != nil {
			b.Fatal(err)
		}
	}
}
