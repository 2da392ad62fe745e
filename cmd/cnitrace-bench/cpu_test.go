//go:build linux

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestCPURoundJudgeFast(t *testing.T) {
	fast := cpuSpec{probes: 1000, interval: time.Millisecond, fast: true}
	saw := func(n uint64) tcpdumpResult {
		r := tcpdumpResult{Names: []string{"eth0", "veth", "cni0", "flannel.1", "eth0"}}
		for range r.Names {
			r.Counts = append(r.Counts, tcpdumpCounts{Captured: n})
		}
		return r
	}
	round := func() cpuRound {
		return cpuRound{CnitraceCPU: 0.22, Answered: 1000, CnitraceFewest: 2000, PingReplies: 1000, TcpdumpCPU: 0.05,
			ProberBare:   &proberRun{Probes: 1000, Replies: 1000, CPU: 60 * time.Millisecond},
			ProberTapped: &proberRun{Probes: 1000, Replies: 1000, CPU: 75 * time.Millisecond},
			proberSeen:   saw(2000)}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*cpuRound)
		problem string // prefix; "" for none
	}{
		{"judged", func(*cpuRound) {}, ""},
		{"prober lost a reply", func(rd *cpuRound) { rd.ProberBare.Replies = 999 }, "the bench's prober alone got 999 replies to 1000 probes"},
		{"prober sent nothing", func(rd *cpuRound) { *rd.ProberTapped = proberRun{} }, "the bench's prober with the tcpdumps got 0 replies to 0 probes"},
		{"prober not run", func(rd *cpuRound) { rd.ProberBare = nil }, "the bench's prober did not run alone"},
		{"tcpdump missed the prober", func(rd *cpuRound) { rd.proberSeen.Counts[4].Captured = 0 },
			"capturing the bench's prober, tcpdump on eth0 saw 0 of 2000 packets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := round()
			tc.edit(&rd)
			rd.judge(fast, saw(2000), "p0")
			if math.Abs(rd.Ratio-2.2) > 1e-9 {
				t.Errorf("as billed: got %.4f, want 2.2", rd.Ratio)
			}
			if tc.problem == "" && math.Abs(rd.FairRatio-0.16/0.13) > 1e-9 {
				t.Errorf("fair: got %.4f, want %.4f", rd.FairRatio, 0.16/0.13)
			}
			if tc.problem == "" && rd.Problem != "" || !strings.HasPrefix(rd.Problem, tc.problem) {
				t.Errorf("problem: got %q, want %q", rd.Problem, tc.problem)
			}
		})
	}
	// ping's tcpdumps are checked first, as before.
	rd := round()
	rd.judge(fast, saw(10), "p0")
	if !strings.HasPrefix(rd.Problem, "tcpdump on eth0 saw 10 of 2000 packets") {
		t.Errorf("got %q", rd.Problem)
	}
}

// A comparison with a fair ratio is judged on it alone: the ratio as
// billed is shown, not judged.
func TestCPUCompareJudgedOnFair(t *testing.T) {
	rounds := func(billed, fair float64) []cpuRound {
		var rs []cpuRound
		for i := range 6 {
			d := 0.01 * float64(i%3-1)
			rs = append(rs, cpuRound{Ratio: billed + d, FairRatio: fair + d})
		}
		return rs
	}
	for _, tc := range []struct {
		name         string
		spec         cpuSpec
		billed, fair float64
		want         verdict
	}{
		{"plain: as billed", cpuSpec{}, 0.8, 3, met},
		{"plain over", cpuSpec{}, 1.3, 0.5, notMet},
		{"flood: fair", cpuSpec{flood: true}, 1.3, 0.7, met},
		{"flood: fair over", cpuSpec{flood: true}, 0.7, 1.3, notMet},
		{"1 ms: fair", cpuSpec{fast: true}, 1.7, 0.66, met},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cpuCompare{Rounds: rounds(tc.billed, tc.fair)}
			c.judge(tc.spec)
			if c.Verdict != tc.want {
				t.Errorf("verdict %v, want %v (ratio %v, fair %v)", c.Verdict, tc.want, c.Ratio, c.FairRatio)
			}
			if (tc.spec.flood || tc.spec.fast) != (c.FairRatio != nil) {
				t.Errorf("fair ratio %v for %+v", c.FairRatio, tc.spec)
			}
		})
	}
	c := &cpuCompare{Rounds: rounds(0.5, 0.5)}
	c.Rounds[2].Problem = "tcpdump on eth0 saw 0 of 600 packets"
	c.judge(cpuSpec{fast: true})
	if !strings.Contains(c.Verdict.String(), "tcpdump on eth0 saw 0") {
		t.Errorf("a round not judged: got %v", c.Verdict)
	}
}

// The taps' cost per flood packet is each side's senders' CPU per packet
// with its captures minus with none, and the difference is taken within
// each round, so a round whose flood ran slower for both sides moves
// neither the difference nor the share.
func TestFloodTaps(t *testing.T) {
	flood := func(nsPerPacket float64) *floodStats {
		return &floodStats{Packets: 1_000_000, SenderCPU: time.Duration(nsPerPacket * 1e6)}
	}
	var rounds []cpuRound
	for i, alone := range []float64{4000, 5000, 4500} {
		rounds = append(rounds, cpuRound{PingCPU: 0.05, TcpdumpCPU: 0.05,
			FloodAlone: flood(alone), FloodCnitrace: flood(alone + 900 + float64(i)), FloodTcpdump: flood(alone + 1000 + float64(i))})
	}
	rounds = append(rounds, cpuRound{}) // a round without a flood counts for nothing
	ft := newFloodTaps(rounds)
	if ft == nil {
		t.Fatal("no summary")
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	near("cnitrace", ft.CnitraceNS.Mean, 901)
	near("tcpdump", ft.TcpdumpNS.Mean, 1001)
	near("difference", ft.DiffNS.Mean, -100)
	if ft.DiffNS.N != 3 || ft.DiffNS.Hi-ft.DiffNS.Lo > 1e-6 {
		t.Errorf("difference %v: want n=3 and no spread (the rounds' common moves cancel)", ft.DiffNS)
	}
	near("share", ft.TapsShare, 1.001/1.101) // tcpdumps' taps 1.001 CPU-s of 0.1 + 1.001, the median round
	if newFloodTaps([]cpuRound{{}}) != nil {
		t.Error("a summary of no flood rounds")
	}
}
