package main

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestMeanCI(t *testing.T) {
	c := meanCI([]float64{1, 2, 3, 4, 5})
	// mean 3, s = sqrt(2.5), t(4) = 2.776: half-width 2.776*1.5811/2.2361 = 1.963
	if c.N != 5 || c.Mean != 3 || math.Abs(c.Hi-c.Mean-1.963) > 0.001 || math.Abs(c.Mean-c.Lo-1.963) > 0.001 {
		t.Errorf("got %+v, want mean 3 +- 1.963", c)
	}
	if c := meanCI([]float64{7}); c.N != 1 || c.Mean != 7 || !math.IsInf(c.Lo, -1) {
		t.Errorf("one value: got %+v, want mean 7 and an infinite interval", c)
	}
	if c := meanCI(make([]float64, 40)); c.Lo != 0 || c.Hi != 0 {
		t.Errorf("40 zeros: got %+v, want [0, 0]", c)
	}
}

func TestIntervalWhole(t *testing.T) {
	c := interval{N: 10, Mean: 1418.4, Lo: 1058.2, Hi: 1777.6}
	if got, want := c.whole(), "1418 [1058, 1778] (n=10)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (interval{N: 1, Mean: -293.4}).whole(), "-293 (n=1, no CI)"; got != want {
		t.Errorf("one round: got %q, want %q", got, want)
	}
}

func TestJudge(t *testing.T) {
	ratio := band{0.95, 1.05}
	for _, tc := range []struct {
		name string
		c    interval
		b    band
		want string // the verdict's prefix
	}{
		{"inside", interval{N: 5, Mean: 1.0, Lo: 0.98, Hi: 1.02}, ratio, "met"},
		{"wholly above", interval{N: 5, Mean: 1.2, Lo: 1.1, Hi: 1.3}, ratio, "NOT met"},
		{"wholly below", interval{N: 5, Mean: 0.8, Lo: 0.7, Hi: 0.9}, ratio, "NOT met"},
		{"wider than the band", interval{N: 5, Mean: 1.0, Lo: 0.9, Hi: 1.1}, ratio, "not judged: CI wider than tolerance"},
		{"estimate out, narrow", interval{N: 5, Mean: 1.06, Lo: 1.03, Hi: 1.09}, ratio, "NOT met"},
		{"estimate in, crosses", interval{N: 5, Mean: 1.04, Lo: 1.0, Hi: 1.08}, ratio, "not judged: CI [1, 1.08] crosses"},
		{"one round", interval{N: 1, Mean: 1.0, Lo: math.Inf(-1), Hi: math.Inf(1)}, ratio, "not judged: one round"},
		{"no rounds", interval{}, ratio, "not judged: no rounds"},
		{"at most, under", interval{N: 5, Mean: 0.5, Lo: 0.4, Hi: 0.6}, atMost(1), "met"},
		{"at most, over", interval{N: 5, Mean: 3, Lo: 2, Hi: 4}, atMost(1), "NOT met"},
		{"at most, crosses under", interval{N: 5, Mean: 0.9, Lo: 0.5, Hi: 1.3}, atMost(1), "not judged: CI"},
		{"at most, crosses over", interval{N: 5, Mean: 1.1, Lo: 0.5, Hi: 1.7}, atMost(1), "NOT met"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := judge(tc.c, tc.b); !strings.HasPrefix(string(got), tc.want) {
				t.Errorf("judge(%v, %v) = %q, want %q...", tc.c, tc.b, got, tc.want)
			}
		})
	}
}

func TestAllOf(t *testing.T) {
	nj := notJudged("tcpdump saw nothing")
	for _, tc := range []struct {
		in   []verdict
		want verdict
	}{
		{[]verdict{met, met}, met},
		{[]verdict{met, nj}, nj},
		{[]verdict{nj, notMet}, notMet},
		{nil, notJudged("nothing measured")},
	} {
		if got := allOf(tc.in...); got != tc.want {
			t.Errorf("allOf(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJudgeStill(t *testing.T) {
	for _, tc := range []struct {
		name  string
		moves map[string][]float64
		worst string
		want  string
	}{
		{"all still", map[string][]float64{"a": {1, -1, 2, 0}, "b": {3, 2, 4, 3}}, "b", "met"},
		// The largest |move| of a round is biased by noise; the mean is not.
		{"noisy but centred", map[string][]float64{"a": {12, -11, 13, -12, 11, -13}}, "a", "not judged: CI wider than tolerance"},
		{"one moved", map[string][]float64{"a": {1, 0, 1}, "b": {30, 31, 29}}, "b", "NOT met"},
		{"none", map[string][]float64{}, "", "not judged: nothing measured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			worst, _, v := judgeStill(tc.moves, 10)
			if worst != tc.worst || !strings.HasPrefix(string(v), tc.want) {
				t.Errorf("got %q, %q; want %q, %q...", worst, v, tc.worst, tc.want)
			}
		})
	}
}

func TestRoundsToDecide(t *testing.T) {
	// 1..5: half-width 1.963 (TestMeanCI). Four times the rounds halve it.
	pilot := []float64{1, 2, 3, 4, 5}
	if got := roundsToDecide(pilot, 1.963/2); got < 20 || got > 21 {
		t.Errorf("half the pilot's half-width: got %d rounds, want 20 (4 x 5)", got)
	}
	if got := roundsToDecide(pilot, 1e-12); got != math.MaxInt32 {
		t.Errorf("a half-width no count of rounds reaches: got %d rounds, want MaxInt32, not an overflow", got)
	}
	if got := roundsToDecide(pilot, 10); got != 5 {
		t.Errorf("the pilot already decides: got %d rounds, want its 5", got)
	}
	if got := roundsToDecide([]float64{3}, 1); got != 1 {
		t.Errorf("one pilot round, no spread to go by: got %d rounds, want 1", got)
	}
	// The mean does not steer it: the same spread shifted far from any
	// bound asks for as many rounds.
	shifted := []float64{101, 102, 103, 104, 105}
	if a, b := roundsToDecide(pilot, 0.5), roundsToDecide(shifted, 0.5); a != b {
		t.Errorf("shifted pilot: %d rounds against %d", b, a)
	}
}

func TestPilotThenDecide(t *testing.T) {
	var ran []int
	round := func(i int) error { ran = append(ran, i); return nil }
	needAt := -1
	needed, n, err := pilotThenDecide(3, 10, round, func() int { needAt = len(ran); return 25 })
	if err != nil || needed != 25 || n != 10 || len(ran) != 10 || needAt != 3 || ran[9] != 9 {
		t.Errorf("need 25, limit 10: needed %d, ran %d (%v), need asked after %d rounds, err %v; want 25, 10 rounds 0-9, asked after the 3 of the pilot", needed, n, ran, needAt, err)
	}
	ran = nil
	if _, n, _ := pilotThenDecide(4, 10, round, func() int { return 2 }); n != 4 || len(ran) != 4 {
		t.Errorf("need under the pilot: ran %d (%v), want the pilot's 4", n, ran)
	}
	ran = nil
	fail := errors.New("lab gone")
	failing := func(i int) error {
		if i == 5 {
			return fail
		}
		return round(i)
	}
	if _, n, err := pilotThenDecide(3, 10, failing, func() int { return 8 }); !errors.Is(err, fail) || n != 5 {
		t.Errorf("a round's error: ran %d, err %v; want 5 and the round's error", n, err)
	}
}
