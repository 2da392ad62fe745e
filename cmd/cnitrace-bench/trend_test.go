//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrendTable(t *testing.T) {
	full := results{
		Commit:    commit{BinaryRevision: "0123456789abcdef0123", BinaryModified: true},
		Machine:   machine{Model: "Intel(R) Xeon(R) Processor", CPUs: 2},
		CPU:       &cpuResult{Plain: &cpuCompare{Ratio: interval{N: 3, Mean: 2.5}}, Fast: &cpuCompare{Ratio: interval{N: 3, Mean: 0.8}, FairRatio: &interval{N: 3, Mean: 0.4}}},
		RTT:       &rttFidelity{Alternating: &rttRounds{Ratio: interval{N: 5, Mean: 1.031}}},
		Observer:  &observerEffect{AloneP50: 122, AddedUS: interval{N: 91, Mean: 6.224}, Tcpdumps: &observerTcpdumps{OverUS: interval{N: 91, Mean: -4.128}}},
		Speed:     &speedResult{Rate: &rateResult{PerSecond: 1987.4}},
		LoadStart: "2.31 1.90 1.52",
		Accuracy:  []accuracyRow{{Verdict: met}, {Verdict: notMet}, {Verdict: notJudged("CI wider than tolerance")}},
	}
	var b strings.Builder
	printTrend(&b, []savedRun{{Name: "2026-12-02T031500Z", R: full}, {Name: "2026-11-25", R: results{}}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want header, rule and 2 rows:\n%s", len(lines), b.String())
	}
	if !strings.HasPrefix(lines[2], "| 2026-11-25 | unknown | - | - | - | - | - |") {
		t.Errorf("oldest first, unmeasured as -: got %q", lines[2])
	}
	want := "| 2026-12-02T031500Z | 0123456789ab+dirty | Intel Xeon x2 | 122 | 1 / 2 / 3 | 2.50 | - | - | 0.80 | 0.40 | - | 1.03 | - | 6.22 | -4.13 | - | - | 1987 | - | 2.31 |"
	if lines[3] != want {
		t.Errorf("got  %q\nwant %q", lines[3], want)
	}
	if n, m := strings.Count(lines[0], "|"), strings.Count(lines[1], "|"); n != m || n != strings.Count(lines[3], "|") {
		t.Errorf("columns differ: header %d, rule %d", n, m)
	}
}

func TestTrendDir(t *testing.T) {
	dir := t.TempDir()
	b, _ := json.Marshal(results{Speed: &speedResult{Answer: &answerResult{Ratio: interval{N: 5, Mean: 1.4}}}})
	os.WriteFile(filepath.Join(dir, "2026-12-02T031500Z.json"), b, 0o644)
	// The first saved run's schema: a number where an interval is now, and
	// accuracy rows with met alone.
	os.WriteFile(filepath.Join(dir, "2026-11-25.json"), []byte(`{"date":"2026-11-25T04:34:09Z","rtt_fidelity":{"p50_ratio":1.12},
		"observer_effect":{"added_us":9.0},"accuracy":[{"site":"network","met":false},{"site":"network","met":true}]}`), 0o644)
	var out strings.Builder
	if err := printTrendDir(&out, dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| 2026-12-02T031500Z | unknown | - | - | - | - | - | - | - | - | 1.40 |") ||
		!strings.Contains(out.String(), "| 2026-11-25 | unknown | - | - | 1 / 2 / 2 | - | - | - | - | - | - | 1.12 | - |") {
		t.Errorf("got:\n%s", out.String())
	}
}
