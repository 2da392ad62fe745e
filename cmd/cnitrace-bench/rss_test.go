package main

import (
	"strings"
	"testing"
)

func TestRSSCurve(t *testing.T) {
	flat := []float64{20, 30, 35, 35, 35.5, 35.6, 35.2, 35.8, 35.4, 35.0, 28}
	rising := []float64{20.9, 25, 30, 35, 40, 45, 50, 55, 57.8}
	for _, tc := range []struct {
		name    string
		samples []float64
		warm    int
		maxrss  float64
		limit   float64
		want    string
	}{
		{"flat, true peak close", flat, 3, 37, 64, "met"},
		{"flat samples, peak between them", flat, 3, 78, 0, "NOT met"}, // the 78 MB
		{"rising", rising, 2, 60, 64, "NOT met"},
		{"flat but over the ceiling", flat, 3, 38, 36, "NOT met"},
		{"no ru_maxrss", flat, 3, 0, 0, "not judged: no ru_maxrss"},
		{"too short", []float64{20, 21}, 5, 22, 0, "not judged: 2 samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rssCurve{PeriodSeconds: 1, RSSMB: tc.samples, LimitMB: tc.limit}
			c.summarise(tc.warm, tc.maxrss)
			if !strings.HasPrefix(string(c.Verdict), tc.want) {
				t.Errorf("got %q (end x%.3f, peak x%.3f, ru_maxrss x%.3f), want %q", c.Verdict, c.Ratio, c.PeakRatio, c.MaxRSSRatio, tc.want)
			}
			if c.Met != (tc.want == "met") {
				t.Errorf("Met = %v with verdict %q", c.Met, c.Verdict)
			}
		})
	}
	c := rssCurve{PeriodSeconds: 1, RSSMB: flat}
	c.summarise(3, 37)
	if c.WarmMB != 35 || c.EndMB != 28 || c.MaxMB != 35.8 || c.WarmUpSeconds != 4 {
		t.Errorf("got warm %.1f end %.1f max %.1f at %.0f s, want 35 28 35.8 at 4 s", c.WarmMB, c.EndMB, c.MaxMB, c.WarmUpSeconds)
	}
}
