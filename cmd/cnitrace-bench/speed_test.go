//go:build linux

package main

import (
	"strings"
	"testing"
)

// The prober's rate is the lower of the pairs' differential rates; a short
// rate is the prober's unless the host stole the machine during that
// pair's long run, and a drop of ours is never excused.
func TestRateJudge(t *testing.T) {
	pair := func(longWall, steal float64, dropped int) []rateRun {
		return []rateRun{
			{Probes: 2000, Sent: 2000, WallS: 1.05},
			{Probes: 20000, Sent: 20000, WallS: longWall, Steal: steal, Dropped: dropped},
		}
	}
	for _, tc := range []struct {
		name string
		runs []rateRun
		rate float64
		want string // verdict prefix
	}{
		{"met", append(pair(10.05, 0, 0), pair(10.06, 0.2, 0)...), 18000 / 9.01, "met"},
		{"short, quiet host", append(pair(10.05, 0, 0), pair(10.35, 0.01, 0)...), 18000 / 9.30, "NOT met"},
		{"short, host stole", append(pair(10.05, 0, 0), pair(10.35, 0.13, 0)...), 18000 / 9.30, "not judged: the host took 13%"},
		// The excuse is the slower pair's: steal in the faster one does not count.
		{"short, the other pair stolen", append(pair(10.05, 0.13, 0), pair(10.35, 0.01, 0)...), 18000 / 9.30, "NOT met"},
		{"dropped on a stolen host", append(pair(10.05, 0, 0), pair(10.35, 0.13, 3)...), 18000 / 9.30, "NOT met"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rateResult{Runs: tc.runs}
			rt.judge()
			if d := rt.PerSecond - tc.rate; d > 1e-6 || d < -1e-6 {
				t.Errorf("rate %.3f, want %.3f", rt.PerSecond, tc.rate)
			}
			if !strings.HasPrefix(rt.Verdict.String(), tc.want) {
				t.Errorf("verdict %q, want %q...", rt.Verdict, tc.want)
			}
		})
	}
}
