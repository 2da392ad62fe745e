//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// printTable writes every section's figures with their goals, then one
// Markdown table of the goals and verdicts.
func printTable(w io.Writer, r *results) {
	m := r.Machine
	fmt.Fprintf(w, "cnitrace lab benchmark, %s, kernel %s, %d CPUs (%s), %d MB, %s\n", r.Date, m.Kernel, m.CPUs, m.Model, m.MemoryMB, m.Go)
	fmt.Fprintf(w, "binary %s (vcs.revision %s, modified %v); bench checkout %s; load average %s at the start, %s at the end\n\n",
		r.Commit.Binary, r.Commit.BinaryRevision, r.Commit.BinaryModified, r.Commit.Checkout, r.LoadStart, r.LoadEnd)
	var goals []goalLine
	if len(r.Accuracy) > 0 {
		goals = append(goals, printAccuracy(w, r.Accuracy)...)
	}
	if f := r.RTT; f != nil {
		if f.Pilot > 0 {
			fmt.Fprintf(w, "2. RTT fidelity rounds: a %d-round pilot's spread asked for %d, %d run\n", f.Pilot, f.Needed, f.Alternating.Rounds)
		}
		for _, x := range []struct {
			name string
			r    *rttRounds
		}{{"alternating", f.Alternating}, {"concurrent", f.Concurrent}} {
			fmt.Fprintf(w, "2. RTT fidelity, %s (%d rounds x %d probes): rtt_ping_us p50 %.1f us, rtt_us p50 %.1f us, ping p50 %.1f us; ratio ping-style %s (kernel %.2f); goal 0.95-1.05: %s\n",
				x.name, x.r.Rounds, x.r.ProbesPerRound, x.r.PingStyleP50, x.r.KernelP50, x.r.PingP50, x.r.Ratio, x.r.KernelRatio, x.r.Verdict)
			goals = append(goals, goalLine{"2", "RTT fidelity, " + x.name + ": rtt_ping_us p50 / ping p50 in 0.95-1.05", x.r.Ratio.String(), x.r.Verdict})
			if sc := x.r.SameCaptures; sc != nil {
				fmt.Fprintf(w, "2. RTT fidelity, %s, against ping under the same captures (five tcpdumps copying its packets): ping p50 %.1f us (x%.2f of the bare ping: the captures' cost to any prober); ratio %s; goal 0.95-1.05: %s\n",
					x.name, sc.PingP50, sc.TapFloor, sc.Ratio, sc.Verdict)
				goals = append(goals, goalLine{"2", "RTT fidelity, " + x.name + ", same captures: rtt_ping_us p50 / ping p50 under five copying tcpdumps in 0.95-1.05", sc.Ratio.String(), sc.Verdict})
			}
		}
	}
	if o := r.Observer; o != nil {
		fmt.Fprintf(w, "3. observer effect (%d rounds x %d pings; a %d-round pilot's spread asked for %d): ping p50 %.1f us alone, %.1f us while cnitrace captures; added per round %s us; goal %s: %s\n",
			o.Rounds, o.PerRound, o.Pilot, o.Needed, o.AloneP50, o.CaptureP50, o.AddedUS, o.Goal, o.Verdict)
		goals = append(goals, goalLine{"3", "observer effect on ping within +-2 us", o.AddedUS.String() + " us", o.Verdict})
		if td := o.Tcpdumps; td != nil {
			fmt.Fprintf(w, "3. observer effect against five buffered tcpdumps on the same points (not keeping ping's packets): ping p50 %.1f us, added %s us; cnitrace's added minus theirs %s us; goal %s: %s\n",
				td.P50, td.AddedUS, td.OverUS, td.Goal, td.Verdict)
			goals = append(goals, goalLine{"3", "observer effect at most 5 us above five tcpdumps'", td.OverUS.String() + " us", td.Verdict})
		}
	}
	if c := r.CPU; c != nil {
		goals = append(goals, printCPU(w, c)...)
	}
	if s := r.Speed; s != nil {
		goals = append(goals, printSpeed(w, s)...)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "6. memory: %d probes at %.1f ms in %.0f s: %d of %d answered, %d dropped by cnitrace; RSS %.1f MB after warm-up (%.0f s), %.1f MB at the end: x%.3f, sampled peak since x%.3f, ru_maxrss %.1f MB: x%.3f; curve %s MB (%d samples); goal %s: %s\n",
			m.Probes, m.IntervalMS, m.WallSeconds, m.Received, m.Sent, m.Dropped, m.WarmMB, m.WarmUpSeconds, m.EndMB, m.Ratio, m.PeakRatio, m.RUMaxRSSMB, m.MaxRSSRatio, m.curve(), len(m.RSSMB), m.Goal, m.Verdict)
		goals = append(goals, goalLine{"6", "10^6 probes: RSS flat (end, sampled peak, ru_maxrss within 10% of warm-up)",
			fmt.Sprintf("x%.3f, x%.3f, x%.3f of %.1f MB", m.Ratio, m.PeakRatio, m.MaxRSSRatio, m.WarmMB), m.Verdict})
	}
	if t := r.Transport; t != nil {
		for _, x := range []struct {
			name string
			r    *transportRow
		}{{"TCP SYN probe (--proto tcp --port 8080)", t.TCP}, {"DNS probe (--proto udp --port 53)", t.DNS}} {
			fmt.Fprintf(w, "7. %s vs %s (%d rounds x %d, alternating): probe rtt_user_us p50 %s us (rtt_us %s), client p50 %s us; client/probe %s; goal 0.95-1.05: %s\n   %s\n",
				x.name, x.r.Client, x.r.Rounds, x.r.ProbesPerRound, floats(x.r.ProbeUserP50), floats(x.r.ProbeKernelP50), floats(x.r.ClientP50), x.r.Ratio, x.r.Verdict, x.r.Check)
			goals = append(goals, goalLine{"7", x.name + ": " + x.r.Client + " / probe rtt_user_us in 0.95-1.05", x.r.Ratio.String(), x.r.Verdict})
		}
	}
	printGoals(w, goals)
}

// goalLine is one row of the goals table.
type goalLine struct {
	section, goal, figure string
	verdict               verdict
}

func printGoals(w io.Writer, goals []goalLine) {
	fmt.Fprintf(w, "\n| # | goal | figure (mean [95%% CI] over rounds) | verdict |\n|---|---|---|---|\n")
	for _, g := range goals {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.section, g.goal, g.figure, g.verdict)
	}
}

func floats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, " ")
}

// pairedCell is the fewest and most probes a row's rounds paired: "104-108".
func pairedCell(n []int) string {
	if len(n) == 0 {
		return "-"
	}
	return fmt.Sprintf("%d-%d", slices.Min(n), slices.Max(n))
}

func printAccuracy(w io.Writer, rows []accuracyRow) []goalLine {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "1. accuracy\tinjected us\tinjector late us (max)\tpaired probes\ttruth us\tping saw us\tping - truth [95% CI]\tsegment\trecovered us\trecovered - truth [95% CI]\tothers: worst mean move us\tverdict\t")
	var goals []goalLine
	for _, a := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f (%.0f)\t%s\t%.1f\t%.1f\t%.1f [%.1f, %.1f]\t%s->%s\t%.1f\t%.1f [%.1f, %.1f]\t%.1f\t%s\t\n", a.Site, a.InjectedUS, a.InjectorLateUS, a.InjectorMaxUS,
			pairedCell(a.PairedProbes), meanCI(a.TruthUS).Mean, a.PingDeltaUS, a.PingError.Mean, a.PingError.Lo, a.PingError.Hi,
			a.SegmentFrom, a.SegmentTo, a.RecoveredUS, a.Error.Mean, a.Error.Lo, a.Error.Hi, a.OtherMaxUS, a.Verdict)
		goals = append(goals, goalLine{"1", fmt.Sprintf("accuracy, %s %.0f us: recovered within +-%.0f us of the truth, others within +-%.0f us", a.Site, a.InjectedUS, a.ToleranceUS, otherTolerance),
			fmt.Sprintf("%s us; others: worst %s %.1f us, %s", a.Error, a.OtherWorst, a.OtherMaxUS, a.OtherVerdict), a.Verdict})
	}
	tw.Flush()
	if len(rows) > 0 {
		fmt.Fprintf(w, "   (%d rounds x %d probes each, cnitrace and ping at once; cnitrace's probes paired with the injector's hold of each; goal: recovered within max(3%%, 20 us) of the truth, every other segment's mean move within +-10 us (95%% CIs); truth:", rows[0].Rounds, rows[0].ProbesPerRound)
		var sources []string
		sites := map[string][]string{}
		for _, a := range rows {
			if len(sites[a.TruthSource]) == 0 {
				sources = append(sources, a.TruthSource)
			}
			if !slices.Contains(sites[a.TruthSource], a.Site) {
				sites[a.TruthSource] = append(sites[a.TruthSource], a.Site)
			}
		}
		for i, src := range sources {
			sep := ";"
			if i == len(sources)-1 {
				sep = ")\n"
			}
			fmt.Fprintf(w, " %s: %s%s", strings.Join(sites[src], ", "), src, sep)
		}
	}
	return goals
}

func printCPU(w io.Writer, c *cpuResult) []goalLine {
	var goals []goalLine
	for _, x := range []struct {
		name string
		c    *cpuCompare
	}{{"at 10 ms", c.Plain}, {"at 10 ms under flood", c.Flood}, {"at 1 ms", c.Fast}} {
		fmt.Fprintf(w, "4. CPU %s, %d probes, vs %s (%d rounds):\n", x.name, x.c.Probes, x.c.Comparator, len(x.c.Rounds))
		for _, rd := range x.c.Rounds {
			fmt.Fprintf(w, "   cnitrace %.3f CPU-s (sys %.3f), %d answered, fewest at a point %d; ping %.3f (sys %.3f), %d replies; tcpdump x5 %.3f, captured %s; ratio %.2f",
				rd.CnitraceCPU, rd.CnitraceSys, rd.Answered, rd.CnitraceFewest, rd.PingCPU, rd.PingSys, rd.PingReplies, rd.TcpdumpCPU, captured(rd.Tcpdump), rd.Ratio)
			if rd.FloodAlone != nil {
				fmt.Fprintf(w, "; flood %.0f/%.0f/%.0f packets/s, senders %.0f/%.0f/%.0f ns per packet (with cnitrace/tcpdump/no capture); fair ratio %.2f",
					rd.FloodCnitrace.PPS, rd.FloodTcpdump.PPS, rd.FloodAlone.PPS, rd.FloodCnitrace.nsPerPacket(), rd.FloodTcpdump.nsPerPacket(), rd.FloodAlone.nsPerPacket(), rd.FairRatio)
			}
			if rd.ProberBare != nil && rd.ProberTapped != nil {
				fmt.Fprintf(w, "; bench prober %.1f/%.1f us per probe (no capture/with tcpdumps, sys %.1f/%.1f), %d/%d replies, tcpdumps captured %s; fair ratio %.2f",
					rd.ProberBare.nsPerProbe()/1e3, rd.ProberTapped.nsPerProbe()/1e3, rd.ProberBare.sysPerProbe()/1e3, rd.ProberTapped.sysPerProbe()/1e3,
					rd.ProberBare.Replies, rd.ProberTapped.Replies, captured(rd.ProberTcpdump), rd.FairRatio)
			}
			fmt.Fprintf(w, "; machine system+softirq %.2f/%.2f s", rd.MachineCni.System+rd.MachineCni.SoftIRQ, rd.MachineCmp.System+rd.MachineCmp.SoftIRQ)
			if rd.Problem != "" {
				fmt.Fprintf(w, "; PROBLEM: %s", rd.Problem)
			}
			fmt.Fprintln(w)
		}
		fig := "ratio " + x.c.Ratio.String()
		if x.c.FairRatio != nil {
			fig = "fair " + x.c.FairRatio.String() + " (judged); as billed " + x.c.Ratio.String()
		}
		if t := x.c.FloodTaps; t != nil {
			fmt.Fprintf(w, "   taps on the flood, per packet (senders' CPU with the captures minus without): cnitrace %s ns, tcpdumps %s ns, cnitrace's minus theirs %s ns; the tcpdumps' taps are %.0f%% of the comparator\n",
				t.CnitraceNS.whole(), t.TcpdumpNS.whole(), t.DiffNS.whole(), 100*t.TapsShare)
		}
		fmt.Fprintf(w, "   %s; goal %s: %s\n", fig, x.c.Goal, x.c.Verdict)
		goals = append(goals, goalLine{"4", fmt.Sprintf("CPU %s: %s", x.name, x.c.Goal), fig, x.c.Verdict})
	}
	k := c.Load
	fmt.Fprintf(w, "4. under flood (lowest %.0f packets/s through every point): %d of %d answered, %d answered probes missing at a point, %d ring drops; goal %s: %s\n   billing: %s\n",
		k.FloodPPS, k.Answered, k.Probes, k.Missing, k.RingDrops, k.Goal, k.Verdict, c.Billing)
	goals = append(goals, goalLine{"4", "under a 150k+ packets/s flood: 0 observations lost, 0 ring drops",
		fmt.Sprintf("%.0f packets/s, %d missing, %d drops", k.FloodPPS, k.Missing, k.RingDrops), k.Verdict})
	return goals
}

func captured(c []tcpdumpCounts) string {
	s := make([]string, len(c))
	for i, x := range c {
		s[i] = fmt.Sprint(x.Captured)
	}
	return strings.Join(s, "/")
}

func printSpeed(w io.Writer, s *speedResult) []goalLine {
	a, rt, sc := s.Answer, s.Rate, s.Scale
	fmt.Fprintf(w, "5. time to an answer (%d rounds): trace --count 10 --interval 10ms %s ms, ping -c 10 -i 0.01 %s ms; ratio %s; goal %s: %s\n",
		a.Rounds, floats(a.TraceMS), floats(a.PingMS), a.Ratio, a.Goal, a.Verdict)
	fmt.Fprintf(w, "5. prober rate at 0.5 ms:")
	for _, run := range rt.Runs {
		fmt.Fprintf(w, " %d probes in %.2f s (%d answered, %d dropped, %d late, %d ring drops, steal %.1f%%);", run.Probes, run.WallS, run.Received, run.Dropped, run.Late, run.RingDrops, 100*run.Steal)
	}
	fmt.Fprintf(w, " differential rate %.0f probes/s; goal %s: %s\n", rt.PerSecond, rt.Goal, rt.Verdict)
	fmt.Fprintf(w, "5. sustained: %d probes at %.0f ms: %.0f probes/s (whole wall), %d answered, CPU %.2f s; RSS %.1f MB after warm-up (%.0f s), end x%.3f, sampled peak x%.3f, ru_maxrss %.1f MB x%.3f; curve %s MB; goal %s, ~1000 probes/s: %s, rate %s\n",
		sc.Probes, sc.IntervalMS, sc.ProbesPerSec, sc.Received, sc.CPUSeconds, sc.WarmMB, sc.WarmUpSeconds, sc.Ratio, sc.PeakRatio, sc.RUMaxRSSMB, sc.MaxRSSRatio, sc.curve(), sc.Goal, sc.Verdict, sc.RateVerdict)
	return []goalLine{
		{"5", "time to an answer: trace wall <= 1.5 x ping's", a.Ratio.String(), a.Verdict},
		{"5", "prober: 2000 probes/s at 0.5 ms, nothing of ours dropped", fmt.Sprintf("%.0f probes/s", rt.PerSecond), rt.Verdict},
		{"5", "sustained 1 ms: RSS flat and ru_maxrss <= 64 MB", fmt.Sprintf("end x%.3f, peak x%.3f, ru_maxrss %.1f MB", sc.Ratio, sc.PeakRatio, sc.RUMaxRSSMB), sc.Verdict},
	}
}
