package report

import (
	"math/bits"
	"time"
)

// sketch is a streaming quantile sketch of durations: a fixed log-linear
// histogram. Values under sketchLinear ns (in magnitude) have a bucket
// each, so they are kept exactly; above, every power of two is cut into
// sketchLinear buckets, each at most 1/sketchLinear of its lower bound
// wide. A quantile is read as the middle of the bucket holding the
// nearest-rank sample, so it is within SketchError of that sample (and
// exact below sketchLinear ns). Negative durations (clock artefacts) are
// kept the same way on a mirrored side. Magnitudes from 2^sketchTop ns
// (about 9.8 hours) up share the last bucket. Min, max and the count are
// exact.
//
// Memory is bounded: at most sketchOctaves buckets of sketchLinear
// counters per side, each octave allocated when its first value lands
// (a run whose samples span a few octaves holds a few KB; the worst case
// is 2*sketchOctaves*sketchLinear*8 bytes, 40 KB).
type sketch struct {
	neg, pos [sketchOctaves]*[sketchLinear]uint64
	n        uint64
	min, max time.Duration
}

const (
	sketchBits   = 6
	sketchLinear = 1 << sketchBits // buckets per octave, and the exact range in ns
	sketchTop    = 45              // magnitudes of 2^sketchTop ns and more share the last bucket
	// sketchOctaves counts octave rows: row 0 is the exact range
	// [0, sketchLinear), row k the octave [2^(sketchBits+k-1), 2^(sketchBits+k)).
	sketchOctaves = sketchTop - sketchBits + 1
)

// SketchError is the largest relative error of a percentile read from a
// sketch, as a fraction of the true nearest-rank sample: half a bucket,
// 1/128.
const SketchError = 1.0 / (2 * sketchLinear)

// add counts d.
func (s *sketch) add(d time.Duration) {
	if s.n == 0 || d < s.min {
		s.min = d
	}
	if s.n == 0 || d > s.max {
		s.max = d
	}
	s.n++
	side, m := &s.pos, uint64(d)
	if d < 0 {
		side, m = &s.neg, uint64(-d) // -MinInt64 wraps to 1<<63, which is right as uint64
	}
	row, col := sketchIndex(m)
	if side[row] == nil {
		side[row] = new([sketchLinear]uint64)
	}
	side[row][col]++
}

// sketchIndex returns the row and column of magnitude m.
func sketchIndex(m uint64) (row, col int) {
	if m < sketchLinear {
		return 0, int(m)
	}
	e := bits.Len64(m) - 1 // m in [2^e, 2^(e+1)), e >= sketchBits
	if e >= sketchTop {
		return sketchOctaves - 1, sketchLinear - 1
	}
	return e - sketchBits + 1, int(m>>(e-sketchBits)) - sketchLinear
}

// sketchValue is the magnitude a bucket stands for: its value in the exact
// row, else its middle.
func sketchValue(row, col int) uint64 {
	if row == 0 {
		return uint64(col)
	}
	shift := row - 1 // bucket width is 2^shift
	lo := uint64(sketchLinear+col) << shift
	return lo + (uint64(1)<<shift)/2
}

// merge adds o's counts to s.
func (s *sketch) merge(o *sketch) {
	if o == nil || o.n == 0 {
		return
	}
	if s.n == 0 || o.min < s.min {
		s.min = o.min
	}
	if s.n == 0 || o.max > s.max {
		s.max = o.max
	}
	s.n += o.n
	for _, sides := range [][2]*[sketchOctaves]*[sketchLinear]uint64{{&s.neg, &o.neg}, {&s.pos, &o.pos}} {
		dst, src := sides[0], sides[1]
		for r, row := range src {
			if row == nil {
				continue
			}
			if dst[r] == nil {
				dst[r] = new([sketchLinear]uint64)
			}
			for c, k := range row {
				dst[r][c] += k
			}
		}
	}
}

// clone returns a copy of s that shares nothing with it.
func (s *sketch) clone() *sketch {
	c := &sketch{}
	c.merge(s)
	return c
}

// rank returns the nearest-rank percentile p (0-100) of what s counted:
// the smallest value with at least p% of the samples at or below it, to
// within SketchError; min and max exactly. It returns 0 for an empty
// sketch.
func (s *sketch) rank(p int) time.Duration {
	if s.n == 0 {
		return 0
	}
	k := (uint64(p)*s.n + 99) / 100 // ceil(p/100 * n), as rank does
	switch {
	case k <= 1:
		return s.min
	case k >= s.n:
		return s.max
	}
	var seen uint64
	for r := sketchOctaves - 1; r >= 0; r-- { // most negative first
		if d, ok := s.walk(s.neg[r], r, k, &seen, true); ok {
			return d
		}
	}
	for r := range sketchOctaves {
		if d, ok := s.walk(s.pos[r], r, k, &seen, false); ok {
			return d
		}
	}
	return s.max
}

// walk counts the buckets of one row in ascending order of value, and
// returns the value of the bucket where the count reaches k.
func (s *sketch) walk(row *[sketchLinear]uint64, r int, k uint64, seen *uint64, neg bool) (time.Duration, bool) {
	if row == nil {
		return 0, false
	}
	for i := range sketchLinear {
		c := i
		if neg {
			c = sketchLinear - 1 - i // larger magnitudes are smaller values
		}
		if *seen += row[c]; *seen >= k {
			v := time.Duration(sketchValue(r, c))
			if neg {
				v = -v
			}
			return min(max(v, s.min), s.max), true
		}
	}
	return 0, false
}
