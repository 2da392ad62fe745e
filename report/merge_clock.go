package report

import (
	"cmp"
	"errors"
	"math"
	"slices"
)

// DriftMinSpan is how long, in seconds of the source's clock, a run must
// last for merge to fit a drift term to the clock offset: below it a
// constant offset is assumed (clocks drift by tens of microseconds per
// second at most, a fraction of a wire's round trip over so short a run).
const DriftMinSpan = 2.0

// maxDrift bounds the drift merge considers, in ns per second (500 ppm):
// far beyond any NTP-disciplined or free-running quartz clock.
const maxDrift = 500_000.0

// boundGrid is how many times over the run the drift fit's hard bound is
// evaluated at; the widest is the bound.
const boundGrid = 17

// ErrClockInconsistent says no clock offset (constant, or drifting
// linearly with a drift under 500 ppm) fits every probe: a clock was
// stepped during the run, or a stamp is wrong. The one-way split is then
// not given; the wire's round trip still is.
var ErrClockInconsistent = errors.New("no clock offset fits every probe: a clock was stepped during the run, or drifts faster than 500 ppm")

// clockSample is what one probe says of the two clocks: at x, seconds
// since the first probe on the source's clock, f = B's uplink RX minus
// A's uplink TX and r = A's uplink RX minus B's uplink TX, ns. With B's
// clock ahead of A's by theta, f = request wire + theta and r = reply wire
// - theta, and both wires take no less than zero: theta is in [-r, f].
type clockSample struct {
	x    float64
	f, r float64
}

// clockFit is the offset of B's clock from A's, theta(x) = a + b*x ns, and
// a hard bound on it: every offset line consistent with every probe lies
// within bound of the estimate, over the whole run (the widest it is at
// boundGrid times over the run). One bound holds for every probe, as the
// report says it (MergedClock.BoundUS).
type clockFit struct {
	a, b  float64 // ns, ns per second
	drift bool    // b was fitted; else 0
	bound float64 // ns
	span  float64 // seconds from the first sample to the last
	n     int
}

// fitClock estimates the offset from the samples, NTP-style: with a
// constant offset, it lies in [-min r, min f] and the estimate is the
// middle; for a run of DriftMinSpan or longer, the offset is a line, every
// line under every f and above every -r is consistent (the lower envelope
// of f and the upper envelope of -r bound them), and the estimate is the
// middle of the consistent lines at the middle of the consistent slopes.
func fitClock(samples []clockSample) (*clockFit, error) {
	if len(samples) == 0 {
		return nil, errors.New("no probe was seen at both uplinks")
	}
	lo, hi := samples[0].x, samples[0].x
	for _, s := range samples {
		lo, hi = min(lo, s.x), max(hi, s.x)
	}
	c := &clockFit{span: hi - lo, n: len(samples)}
	if c.span < DriftMinSpan {
		u, l := upper(samples, 0), lower(samples, 0)
		if u < l {
			return nil, ErrClockInconsistent
		}
		c.a, c.bound = (u+l)/2, (u-l)/2
		return c, nil
	}
	samples = envelopes(samples) // only the envelopes' corners bind any line
	gap := func(b float64) float64 { return upper(samples, b) - lower(samples, b) }
	best := argmax(gap, -maxDrift, maxDrift)
	if gap(best) < 0 {
		return nil, ErrClockInconsistent
	}
	bLo := edge(gap, best, -maxDrift)
	bHi := edge(gap, best, maxDrift)
	c.drift = true
	c.b = (bLo + bHi) / 2
	c.a = (upper(samples, c.b) + lower(samples, c.b)) / 2
	for k := range boundGrid {
		x := lo + c.span*float64(k)/float64(boundGrid-1)
		est := c.a + c.b*x
		up := argmaxValue(func(b float64) float64 { return upper(samples, b) + b*x }, bLo, bHi)
		down := -argmaxValue(func(b float64) float64 { return -(lower(samples, b) + b*x) }, bLo, bHi)
		c.bound = max(c.bound, up-est, est-down)
	}
	return c, nil
}

// upper is the lowest offset at x = 0 that slope b allows: min over the
// samples of f - b*x (a line of slope b must pass under every f).
func upper(samples []clockSample, b float64) float64 {
	u := math.Inf(1)
	for _, s := range samples {
		u = min(u, s.f-b*s.x)
	}
	return u
}

// lower is the highest: max of -r - b*x.
func lower(samples []clockSample, b float64) float64 {
	l := math.Inf(-1)
	for _, s := range samples {
		l = max(l, -s.r-b*s.x)
	}
	return l
}

// argmax returns where the concave g is largest in [lo, hi], by ternary
// search.
func argmax(g func(float64) float64, lo, hi float64) float64 {
	for range 100 {
		m1, m2 := lo+(hi-lo)/3, hi-(hi-lo)/3
		if g(m1) < g(m2) {
			lo = m1
		} else {
			hi = m2
		}
	}
	return (lo + hi) / 2
}

// argmaxValue returns the largest value of the concave g in [lo, hi].
func argmaxValue(g func(float64) float64, lo, hi float64) float64 {
	return max(g(argmax(g, lo, hi)), g(lo), g(hi))
}

// edge returns the point between from (where g >= 0) and to where the
// concave g falls below 0, or to if it never does.
func edge(g func(float64) float64, from, to float64) float64 {
	if g(to) >= 0 {
		return to
	}
	for range 100 {
		m := (from + to) / 2
		if g(m) >= 0 {
			from = m
		} else {
			to = m
		}
	}
	return from
}

// offset is the estimated offset at x, ns.
func (c *clockFit) offset(x float64) float64 { return c.a + c.b*x }

// envelopes returns the samples on the lower convex hull of the points
// (x, f) and those on the upper convex hull of (x, -r), as samples whose
// other value never binds (f or r infinite): no line under every f touches
// an f above that hull, none above every -r a -r below its hull.
func envelopes(samples []clockSample) []clockSample {
	pts := slices.Clone(samples)
	slices.SortFunc(pts, func(p, q clockSample) int { return cmp.Compare(p.x, q.x) })
	var out []clockSample
	for _, s := range hull(pts, func(s clockSample) float64 { return s.f }) {
		out = append(out, clockSample{x: s.x, f: s.f, r: math.Inf(1)})
	}
	for _, s := range hull(pts, func(s clockSample) float64 { return s.r }) { // lower hull of r is the upper hull of -r
		out = append(out, clockSample{x: s.x, f: math.Inf(1), r: s.r})
	}
	return out
}

// hull returns the lower convex hull of the points (x, y(s)) of pts, sorted
// by x (Andrew's monotone chain).
func hull(pts []clockSample, y func(clockSample) float64) []clockSample {
	var h []clockSample
	for _, p := range pts {
		for len(h) >= 2 {
			a, b := h[len(h)-2], h[len(h)-1]
			// drop b unless a -> b -> p turns left (counter-clockwise)
			if (b.x-a.x)*(y(p)-y(a))-(y(b)-y(a))*(p.x-a.x) > 0 {
				break
			}
			h = h[:len(h)-1]
		}
		h = append(h, p)
	}
	return h
}
