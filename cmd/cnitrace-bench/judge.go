package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// A verdict is what the benchmark says of one goal: "met", "NOT met", or
// "not judged: <why>" when the figures cannot decide (a confidence
// interval wider than the tolerance, a comparator that saw nothing). It
// never says "met" on figures that could not show it.
type verdict string

const (
	met    verdict = "met"
	notMet verdict = "NOT met"
)

func notJudged(format string, args ...any) verdict {
	return verdict("not judged: " + fmt.Sprintf(format, args...))
}

func (v verdict) Met() bool      { return v == met }
func (v verdict) Judged() bool   { return !strings.HasPrefix(string(v), "not judged") }
func (v verdict) String() string { return string(v) }

// metIf is the verdict of a goal judged on an exact count or a single
// figure without noise (a loss count, a drop count).
func metIf(ok bool) verdict {
	if ok {
		return met
	}
	return notMet
}

// allOf combines the verdicts of a goal's parts: NOT met if any part is
// not met, else not judged if any part could not be judged, else met.
func allOf(vs ...verdict) verdict {
	for _, v := range vs {
		if v == notMet {
			return notMet
		}
	}
	for _, v := range vs {
		if !v.Judged() {
			return v
		}
	}
	if len(vs) == 0 {
		return notJudged("nothing measured")
	}
	return met
}

// interval is a figure's estimate and its 95% confidence interval.
type interval struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Lo   float64 `json:"ci95_lo"`
	Hi   float64 `json:"ci95_hi"`
}

func (c interval) String() string {
	if c.N < 2 {
		return fmt.Sprintf("%.3g (n=%d, no CI)", c.Mean, c.N)
	}
	return fmt.Sprintf("%.3g [%.3g, %.3g] (n=%d)", c.Mean, c.Lo, c.Hi, c.N)
}

// whole is String for figures read in whole units (nanoseconds per
// packet): %.3g would print 1,420 as 1.42e+03.
func (c interval) whole() string {
	if c.N < 2 {
		return fmt.Sprintf("%.0f (n=%d, no CI)", c.Mean, c.N)
	}
	return fmt.Sprintf("%.0f [%.0f, %.0f] (n=%d)", c.Mean, c.Lo, c.Hi, c.N)
}

// t975 is Student's t at 0.975 for 1 to 30 degrees of freedom.
var t975 = []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// meanCI is the mean of v with Student's t 95% interval: per-round figures
// (one value per round, paired within the round) are what it is meant for.
func meanCI(v []float64) interval {
	c := interval{N: len(v)}
	if c.N == 0 {
		return c
	}
	for _, x := range v {
		c.Mean += x
	}
	c.Mean /= float64(c.N)
	if c.N < 2 {
		c.Lo, c.Hi = math.Inf(-1), math.Inf(1)
		return c
	}
	ss := 0.0
	for _, x := range v {
		ss += (x - c.Mean) * (x - c.Mean)
	}
	t := 1.96
	if df := c.N - 1; df <= len(t975) {
		t = t975[df-1]
	}
	h := t * math.Sqrt(ss/float64(c.N-1)) / math.Sqrt(float64(c.N))
	c.Lo, c.Hi = c.Mean-h, c.Mean+h
	return c
}

// roundsToDecide is how many rounds in all a figure needs for its 95%
// interval to be at most halfWidth either side of its mean, as the pilot
// rounds' spread predicts (Stein's two-stage procedure: the pilot sets the
// number of rounds from its variance alone, so its mean does not steer
// it), at least the pilot's. A figure whose rounds vary by more than its
// tolerance allows is then decided rather than left "not judged" by a
// round count fixed in advance; pilotThenDecide bounds what it runs.
func roundsToDecide(pilot []float64, halfWidth float64) int {
	n := len(pilot)
	if n < 2 || halfWidth <= 0 {
		return n
	}
	c := meanCI(pilot)
	// At the pilot's spread and t (its smaller df: conservative) the
	// half-width shrinks as 1/sqrt(rounds): n' = n (h/halfWidth)^2,
	// clamped before the conversion, which would overflow for a wild pilot.
	h := (c.Hi - c.Lo) / 2
	need := math.Ceil(float64(n) * (h / halfWidth) * (h / halfWidth))
	if need >= math.MaxInt32 {
		return math.MaxInt32
	}
	return max(n, int(need))
}

// pilotThenDecide runs a section's rounds in two stages: pilot rounds,
// then as many more as need (asked once, after the pilot: from the
// pilot's figures, by roundsToDecide) says, at most limit in all. It
// returns what need asked for and how many rounds ran.
func pilotThenDecide(pilot, limit int, round func(i int) error, need func() int) (needed, ran int, err error) {
	for i := range pilot {
		if err := round(i); err != nil {
			return 0, i, err
		}
	}
	needed = need()
	ran = max(pilot, min(needed, limit))
	for i := pilot; i < ran; i++ {
		if err := round(i); err != nil {
			return needed, i, err
		}
	}
	return needed, ran, nil
}

// band is the goal's acceptable range; an open side is an infinity.
type band struct{ Lo, Hi float64 }

func atMost(x float64) band { return band{math.Inf(-1), x} }

func (b band) holds(x float64) bool { return x >= b.Lo && x <= b.Hi }

// judge decides a goal from an interval: met when the whole interval lies
// in the band, NOT met when none of it does or the estimate is outside a
// band the interval is narrower than; otherwise not judged, saying why.
func judge(c interval, b band) verdict {
	switch {
	case c.N == 0:
		return notJudged("no rounds")
	case c.N < 2:
		return notJudged("one round, no confidence interval")
	case c.Lo >= b.Lo && c.Hi <= b.Hi:
		return met
	case c.Hi < b.Lo || c.Lo > b.Hi:
		return notMet
	}
	if w := b.Hi - b.Lo; !math.IsInf(w, 0) && c.Hi-c.Lo > w {
		return notJudged("CI wider than tolerance (%.3g > %.3g)", c.Hi-c.Lo, w)
	}
	if !b.holds(c.Mean) {
		return notMet
	}
	return notJudged("CI [%.3g, %.3g] crosses the bound", c.Lo, c.Hi)
}

// judgeStill judges that figures which should not move did not: each
// key's per-round moves must have their 95% interval within +-tol. It
// returns the key whose mean moved most, that mean, and the verdict (the
// worst of the keys').
func judgeStill(moves map[string][]float64, tol float64) (worst string, mean float64, v verdict) {
	var vs []verdict
	keys := make([]string, 0, len(moves))
	for k := range moves {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := meanCI(moves[k])
		if worst == "" || math.Abs(c.Mean) > math.Abs(mean) {
			worst, mean = k, c.Mean
		}
		vs = append(vs, judge(c, band{-tol, tol}))
	}
	return worst, mean, allOf(vs...)
}
