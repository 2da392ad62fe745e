package main

import (
	"fmt"
	"strings"
)

// rssCurve is a run's resident set: sampled once a period from
// /proc/PID/status, and its true peak, ru_maxrss from wait4, which the
// sampling misses when the peak falls between samples (the report being
// built at the end). Flat after warm-up is the goal, whatever the number
// of probes (docs/report-format.md, "Memory and long runs"): at the end,
// at the sampled peak since warm-up, and at the true peak.
type rssCurve struct {
	PeriodSeconds float64   `json:"sample_period_seconds"`
	RSSMB         []float64 `json:"rss_mb_samples"`
	WarmUpSeconds float64   `json:"warm_up_seconds"`
	WarmMB        float64   `json:"rss_after_warm_up_mb"`
	EndMB         float64   `json:"rss_at_end_mb"`
	MaxMB         float64   `json:"max_rss_mb"`   // the largest sample
	RUMaxRSSMB    float64   `json:"ru_maxrss_mb"` // the true peak
	Ratio         float64   `json:"end_over_warm_up"`
	PeakRatio     float64   `json:"peak_after_warm_up_over_warm_up"` // sampled
	MaxRSSRatio   float64   `json:"ru_maxrss_over_warm_up"`
	LimitMB       float64   `json:"limit_mb,omitempty"` // a ceiling on the true peak, when the goal has one
	Goal          string    `json:"goal"`
	Verdict       verdict   `json:"verdict"`
	Met           bool      `json:"met"`
}

// flatWithin is how far above its warm-up figure the resident set may go.
const flatWithin = 1.10

// summarise reads warm-up, end and peaks off the samples, warm being the
// index of the first sample after warm-up, and judges them.
func (c *rssCurve) summarise(warm int, ruMaxRSSMB float64) {
	c.RUMaxRSSMB = ruMaxRSSMB
	c.Goal = fmt.Sprintf("RSS flat after warm-up: at the end, at the sampled peak and at ru_maxrss within %.0f%% of it", (flatWithin-1)*100)
	if c.LimitMB > 0 {
		c.Goal += fmt.Sprintf("; ru_maxrss <= %.0f MB", c.LimitMB)
	}
	if len(c.RSSMB) < 2 || warm >= len(c.RSSMB)-1 {
		c.Verdict = notJudged("%d samples, none after warm-up and before the end", len(c.RSSMB))
		return
	}
	c.WarmUpSeconds = float64(warm+1) * c.PeriodSeconds
	c.WarmMB, c.EndMB = c.RSSMB[warm], c.RSSMB[len(c.RSSMB)-1]
	peak := 0.0
	for i, mb := range c.RSSMB {
		c.MaxMB = max(c.MaxMB, mb)
		if i >= warm {
			peak = max(peak, mb)
		}
	}
	if c.WarmMB <= 0 {
		c.Verdict = notJudged("no resident set after warm-up")
		return
	}
	c.Ratio, c.PeakRatio, c.MaxRSSRatio = c.EndMB/c.WarmMB, peak/c.WarmMB, c.RUMaxRSSMB/c.WarmMB
	vs := []verdict{metIf(c.Ratio <= flatWithin), metIf(c.PeakRatio <= flatWithin)}
	if c.RUMaxRSSMB <= 0 {
		vs = append(vs, notJudged("no ru_maxrss"))
	} else {
		vs = append(vs, metIf(c.MaxRSSRatio <= flatWithin))
	}
	if c.LimitMB > 0 {
		vs = append(vs, metIf(c.RUMaxRSSMB > 0 && c.RUMaxRSSMB <= c.LimitMB))
	}
	c.Verdict = allOf(vs...)
	c.Met = c.Verdict.Met()
}

// curve is every k-th sample and the last, so that about ten show the
// run's course: "24.0 30.4 35.0 ... 35.8".
func (c *rssCurve) curve() string {
	k := max(len(c.RSSMB)/10, 1)
	var s []string
	for i := 0; i < len(c.RSSMB); i += k {
		s = append(s, fmt.Sprintf("%.1f", c.RSSMB[i]))
	}
	if n := len(c.RSSMB); n > 0 && (n-1)%k != 0 {
		s = append(s, fmt.Sprintf("%.1f", c.RSSMB[n-1]))
	}
	return strings.Join(s, " ")
}
