//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// savedRun is one results file.
type savedRun struct {
	Name string // the file's name without .json
	R    results
}

// trendColumns are the headline figures, one column each: ratios (1.00 is
// parity with the tool compared with) and the observer effect's
// microseconds first, then rates.
var trendColumns = []struct {
	head string
	get  func(r *results) (float64, bool)
}{
	// Not a goal: how fast the machine runs the lab's path, so that rows
	// from machines that name the same CPU model can still be told apart.
	{"ping p50 alone at 10 ms, us", func(r *results) (float64, bool) {
		switch {
		case r.RTT != nil && r.RTT.Alternating != nil && r.RTT.Alternating.PingP50 > 0:
			return r.RTT.Alternating.PingP50, true
		case r.Observer != nil && r.Observer.AloneP50 > 0:
			return r.Observer.AloneP50, true
		}
		return 0, false
	}},
	{"accuracy rows met / judged / all", nil},
	{"CPU 10 ms / (ping + 5 tcpdump)", func(r *results) (float64, bool) {
		return r.CPU.ratio(func(c *cpuResult) *cpuCompare { return c.Plain })
	}},
	{"same, under flood", func(r *results) (float64, bool) {
		return r.CPU.ratio(func(c *cpuResult) *cpuCompare { return c.Flood })
	}},
	{"same, fair (judged)", func(r *results) (float64, bool) {
		return r.CPU.fairRatio(func(c *cpuResult) *cpuCompare { return c.Flood })
	}},
	{"CPU 1 ms / (2 x 5 tcpdump)", func(r *results) (float64, bool) { return r.CPU.ratio(func(c *cpuResult) *cpuCompare { return c.Fast }) }},
	{"same, fair (judged)", func(r *results) (float64, bool) {
		return r.CPU.fairRatio(func(c *cpuResult) *cpuCompare { return c.Fast })
	}},
	{"time to answer / ping", func(r *results) (float64, bool) {
		if r.Speed == nil || r.Speed.Answer == nil {
			return 0, false
		}
		return r.Speed.Answer.Ratio.Mean, r.Speed.Answer.Ratio.N > 0
	}},
	{"RTT / ping, alternating", func(r *results) (float64, bool) {
		if r.RTT != nil && r.RTT.Alternating == nil && r.RTT.LegacyRatio > 0 {
			return r.RTT.LegacyRatio, true
		}
		if r.RTT == nil || r.RTT.Alternating == nil {
			return 0, false
		}
		return r.RTT.Alternating.Ratio.Mean, r.RTT.Alternating.Ratio.N > 0
	}},
	{"RTT / ping, concurrent", func(r *results) (float64, bool) {
		if r.RTT == nil || r.RTT.Concurrent == nil {
			return 0, false
		}
		return r.RTT.Concurrent.Ratio.Mean, r.RTT.Concurrent.Ratio.N > 0
	}},
	{"observer effect on ping, us", func(r *results) (float64, bool) {
		if r.Observer == nil || r.Observer.AddedUS.N == 0 {
			return 0, false
		}
		return r.Observer.AddedUS.Mean, true
	}},
	{"same, minus 5 tcpdumps', us", func(r *results) (float64, bool) {
		if r.Observer == nil || r.Observer.Tcpdumps == nil || r.Observer.Tcpdumps.OverUS.N == 0 {
			return 0, false
		}
		return r.Observer.Tcpdumps.OverUS.Mean, true
	}},
	{"TCP connect() / probe", func(r *results) (float64, bool) {
		return r.Transport.ratio(func(t *transportResult) *transportRow { return t.TCP })
	}},
	{"DNS query / probe", func(r *results) (float64, bool) {
		return r.Transport.ratio(func(t *transportResult) *transportRow { return t.DNS })
	}},
	{"probes/s at 0.5 ms", func(r *results) (float64, bool) {
		if r.Speed == nil || r.Speed.Rate == nil {
			return 0, false
		}
		return r.Speed.Rate.PerSecond, true
	}},
	{"10^6 probes: peak RSS / warm-up", func(r *results) (float64, bool) {
		if r.Memory == nil || r.Memory.MaxRSSRatio == 0 {
			return 0, false
		}
		return r.Memory.MaxRSSRatio, true
	}},
	{"load average at the start", func(r *results) (float64, bool) {
		var v float64
		_, err := fmt.Sscanf(r.LoadStart, "%g", &v)
		return v, err == nil
	}},
}

// short names the machine in a trend row: its CPU model, without the
// trademark signs, and how many CPUs; figures from different machines
// are not comparable.
func (m machine) short() string {
	model := strings.NewReplacer("(R)", "", "(TM)", "", " Processor", "").Replace(m.Model)
	if model == "" {
		return "-"
	}
	return fmt.Sprintf("%s x%d", strings.Join(strings.Fields(model), " "), m.CPUs)
}

func (c *cpuResult) ratio(pick func(*cpuResult) *cpuCompare) (float64, bool) {
	if c == nil || pick(c) == nil || pick(c).Ratio.N == 0 {
		return 0, false
	}
	return pick(c).Ratio.Mean, true
}

// fairRatio is the comparison's fair ratio, which its goal is judged on;
// runs before the bench computed one have none.
func (c *cpuResult) fairRatio(pick func(*cpuResult) *cpuCompare) (float64, bool) {
	if c == nil || pick(c) == nil || pick(c).FairRatio == nil || pick(c).FairRatio.N == 0 {
		return 0, false
	}
	return pick(c).FairRatio.Mean, true
}

func (t *transportResult) ratio(pick func(*transportResult) *transportRow) (float64, bool) {
	if t == nil || pick(t) == nil || pick(t).Ratio.N == 0 {
		return 0, false
	}
	return pick(t).Ratio.Mean, true
}

// printTrend writes the Markdown table of the headline figures, one row
// per run, oldest first; "-" where a run did not measure a figure (a
// partial run, or a file from before the figure existed).
func printTrend(w io.Writer, runs []savedRun) {
	heads := []string{"run", "binary", "machine"}
	for _, c := range trendColumns {
		heads = append(heads, c.head)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(heads, " | "), strings.Repeat("---|", len(heads)))
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b savedRun) int { return strings.Compare(a.Name, b.Name) })
	for _, run := range runs {
		cells := []string{run.Name, run.R.Commit.short(), run.R.Machine.short()}
		if run.R.Quick {
			cells[0] += " (quick)"
		}
		for _, c := range trendColumns {
			cell := "-"
			if c.get == nil {
				cell = accuracyCell(run.R.Accuracy)
			} else if v, ok := c.get(&run.R); ok {
				cell = fmt.Sprintf("%.2f", v)
				if v >= 100 {
					cell = fmt.Sprintf("%.0f", v)
				}
			}
			cells = append(cells, cell)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// printTrendDir reads every dir/*.json and prints their trend.
func printTrendDir(w io.Writer, dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	var runs []savedRun
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		run := savedRun{Name: strings.TrimSuffix(filepath.Base(p), ".json")}
		// A file from an older schema decodes as far as it matches: a field
		// whose type changed since is skipped, and shows as "-".
		var typeErr *json.UnmarshalTypeError
		if err := json.Unmarshal(b, &run.R); err != nil && !errors.As(err, &typeErr) {
			return fmt.Errorf("%s: %w", p, err)
		}
		runs = append(runs, run)
	}
	printTrend(w, runs)
	return nil
}

// accuracyCell counts the accuracy rows met and judged: "3 / 5 / 9".
func accuracyCell(rows []accuracyRow) string {
	if len(rows) == 0 {
		return "-"
	}
	var ok, judged int
	for _, a := range rows {
		if a.Verdict == "" { // before verdicts: met or not
			a.Verdict = metIf(a.Met)
		}
		if a.Verdict.Met() {
			ok++
		}
		if a.Verdict.Judged() {
			judged++
		}
	}
	return fmt.Sprintf("%d / %d / %d", ok, judged, len(rows))
}
