//go:build linux

package main

import (
	"math"
	"testing"
)

// TestSameCaptures: the same-captures ratio is cnitrace's rtt_ping_us p50
// over ping's under the tcpdumps, round by round; the floor is ping under
// them over the bare ping; a tcpdump that missed ping's packets makes the
// row not judged whatever the figures say.
func TestSameCaptures(t *testing.T) {
	pingStyle := []float64{200, 210, 190, 205, 195}
	bare := []float64{150, 160, 140, 155, 145}
	under := []float64{198, 206, 192, 204, 197}
	sc := newSameCaptures(pingStyle, bare, under, "")
	if len(sc.PerRound) != 5 || math.Abs(sc.PerRound[0]-200.0/198) > 1e-9 {
		t.Errorf("per-round ratios %v, want 200/198 first of 5", sc.PerRound)
	}
	if want := 198.0 / 150; math.Abs(sc.TapFloor-want) > 1e-9 {
		t.Errorf("tap floor %v, want %v (median under / median bare)", sc.TapFloor, want)
	}
	if sc.Verdict != met {
		t.Errorf("ratios within 1%% of 1: verdict %q, want met", sc.Verdict)
	}
	if far := newSameCaptures(pingStyle, bare, bare, ""); far.Verdict != notMet {
		t.Errorf("cnitrace 1.33x ping: verdict %q, want NOT met", far.Verdict)
	}
	if missed := newSameCaptures(pingStyle, bare, under, "tcpdump on cni0 saw 3 of 100 packets"); missed.Verdict.Judged() {
		t.Errorf("a tcpdump that missed ping's packets: verdict %q, want not judged", missed.Verdict)
	}
}

// TestObserverOverTcpdumps: cnitrace's effect is judged against the
// tcpdumps' at most observerOverTcpdumps above; an effect under theirs
// is met however far under.
func TestObserverOverTcpdumps(t *testing.T) {
	for _, tc := range []struct {
		over []float64
		want verdict
	}{
		{[]float64{-1, 0.5, 1, -0.5, 0}, met},
		{[]float64{-30, -25, -28, -31, -26}, met},
		{[]float64{9, 10, 11, 10, 9}, notMet},
	} {
		if got := judge(meanCI(tc.over), atMost(observerOverTcpdumps)); got != tc.want {
			t.Errorf("over %v: verdict %q, want %q", tc.over, got, tc.want)
		}
	}
}
