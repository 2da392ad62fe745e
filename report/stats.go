package report

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// dist summarises durations as microsecond percentiles. It returns nil for no
// samples.
func dist(ds []time.Duration) *Dist {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return &Dist{
		P50: micros(rank(s, 50)),
		P90: micros(rank(s, 90)),
		P99: micros(rank(s, 99)),
		Max: micros(s[len(s)-1]),
	}
}

// rank is the nearest-rank percentile of sorted, non-empty s: the smallest
// value with at least p% of the samples at or below it.
func rank(s []time.Duration, p int) time.Duration {
	n := (p*len(s) + 99) / 100 // ceil(p/100 * len)
	return s[min(max(n, 1), len(s))-1]
}

// micros converts to microseconds rounded to 0.1.
func micros(d time.Duration) float64 {
	return round(float64(d)/float64(time.Microsecond), 10)
}

// round rounds x to 1/scale.
func round(x, scale float64) float64 {
	return math.Round(x*scale) / scale
}

// percent formats a fraction as a percentage without the sign: whole
// numbers from 10% up, one decimal below when it matters (0.5, 6, 62).
func percent(frac float64) string {
	p := frac * 100
	if math.Abs(p) >= 10 || p == math.Trunc(p) {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.1f", p)
}
