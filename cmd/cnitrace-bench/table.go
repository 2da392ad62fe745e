//go:build linux

package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

func yes(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// printTable writes every section's figures with their goals.
func printTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "cnitrace lab benchmark, %s, kernel %s, %d CPUs, %s\n\n", r.Date, r.Machine.Kernel, r.Machine.CPUs, r.Machine.Go)
	if len(r.Accuracy) > 0 {
		printAccuracy(w, r.Accuracy)
	}
	if f := r.RTT; f != nil {
		fmt.Fprintf(w, "\n2. RTT fidelity (%d rounds x %d probes, alternating): cnitrace rtt_us p50 %.1f us (p90-p10 %.1f), rtt_ping_us p50 %.1f us; ping p50 %.1f us (p90-p10 %.1f); ratios ping-style %.2f, kernel %.2f; goal %s: %s\n",
			f.Rounds, f.ProbesPerRound, f.CnitraceP50, f.CnitraceSpread, f.PingStyleP50, f.PingP50, f.PingSpread, f.Ratio, f.KernelRatio, f.Goal, yes(f.Met))
	}
	if o := r.Observer; o != nil {
		fmt.Fprintf(w, "3. observer effect (%d rounds): ping p50 %.1f us alone, %.1f us while cnitrace captures: %+.1f us; goal %s: %s\n",
			o.Rounds, o.AloneP50, o.CaptureP50, o.AddedUS, o.Goal, yes(o.Met))
	}
	if l := r.Load; l != nil {
		printLoad(w, l)
	}
	if s := r.Scale; s != nil {
		fmt.Fprintf(w, "5. scale: %d probes at %.0f ms: %.0f probes/s, %d answered, RSS max %.1f MB (samples %v), CPU %.2f s; short trace wall %.0f ms; goal %s: %s\n",
			s.Probes, s.IntervalMS, s.ProbesPerSec, s.Received, s.MaxRSSMB, s.RSSMB, s.CPUSeconds, s.ShortWallMS, s.Goal, yes(s.Met))
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "6. memory: %d probes at %.1f ms in %.0f s: %d of %d answered, %d dropped by cnitrace; RSS %.1f MB after warm-up (%.0f s), %.1f MB at the end: x%.3f, peak since x%.3f, max %.1f MB; curve %s MB (%d samples, 1 s apart); goal %s: %s\n",
			m.Probes, m.IntervalMS, m.WallSeconds, m.Received, m.Sent, m.Dropped, m.WarmMB, m.WarmUpSeconds, m.EndMB, m.Ratio, m.PeakRatio, m.MaxMB, m.curve(), len(m.RSSMB), m.Goal, yes(m.Met))
	}
}

func printAccuracy(w io.Writer, rows []accuracyRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "1. accuracy\tinjected us\tping saw us\tsegment\trecovered us\tothers max us\tgoal\t\t")
	for _, a := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%s->%s\t%.1f\t%.1f\t%s\t%s\t\n", a.Site, a.InjectedUS, a.PingDeltaUS,
			a.SegmentFrom, a.SegmentTo, a.RecoveredUS, a.OtherMaxUS, a.Goal, yes(a.Met))
	}
	tw.Flush()
}

func printLoad(w io.Writer, l *loadResult) {
	fmt.Fprintf(w, "4. capture under load (%.0f s, UDP flood %.0f packets/s through every point, probes at 100/s): %d of %d answered, %d answered probes missing at a point, %d packets dropped by the rings (PACKET_STATISTICS); CPU cnitrace %.2f s vs tcpdump x5 %.2f s; goal %s: %s\n",
		l.Seconds, l.FloodPPS, l.Answered, l.Probes, l.MissingAtAPoint, l.KernelDrops, l.CnitraceCPU, l.TcpdumpCPU, l.Goal, yes(l.Met))
}
