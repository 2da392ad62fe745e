//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// cpuResult is section 4: cnitrace's CPU against what an SRE would run
// instead, in the same run on the same path, and what the captures keep
// under a flood.
type cpuResult struct {
	Plain   *cpuCompare `json:"at_10ms"`
	Flood   *cpuCompare `json:"at_10ms_under_flood"`
	Fast    *cpuCompare `json:"at_1ms"`
	Load    *loadKeep   `json:"under_flood"`
	Billing string      `json:"billing"`
}

// billing says where the kernel bills the capture's work, and so what
// the CPU figures include.
const billing = "A packet socket's filter and ring copy run in the context of whoever pushes the packet through the tap: " +
	"the sender's sendto and the softirq it runs inline on veth and VXLAN, never the capturing process. " +
	"So a prober's own CPU includes the whole round trip's kernel work (ping's and cnitrace's alike), and the taps' work on " +
	"flood packets is billed to the flood's senders: measured as their CPU per packet with each set of captures minus without " +
	"any (RUSAGE_THREAD of the two sender threads), and added to each side in the fair ratio. " +
	"At 1 ms, where ping is not counted, cnitrace pays its probes' round trip and its rings' copies of them, while the tcpdumps' " +
	"copies of ping's packets are billed to ping: the bench's own prober (a raw ICMP socket in the pod, one thread) measures " +
	"a probe's round trip per probe with no capture and with the five tcpdumps capturing it, and the fair ratio is " +
	"(cnitrace - N x bare) / (2 x (tcpdumps + N x (with tcpdumps - bare)))."

// cpuCompare is one comparison over rounds.
type cpuCompare struct {
	Probes     int        `json:"probes"`
	IntervalMS float64    `json:"interval_ms"`
	Flood      bool       `json:"flood"`
	Comparator string     `json:"comparator"`
	Rounds     []cpuRound `json:"rounds"`
	Ratio      interval   `json:"ratio"`                // cnitrace / comparator, process CPU (user + sys)
	FairRatio  *interval  `json:"fair_ratio,omitempty"` // with the taps' work billed to each side (flood), the probes' round trip left out (1 ms)
	FloodTaps  *floodTaps `json:"flood_taps,omitempty"` // under the flood: what the fair ratio adds to each side
	Goal       string     `json:"goal"`
	Verdict    verdict    `json:"verdict"`
}

// floodTaps is the taps' work on the flood's packets, per packet, over the
// rounds: each side's senders' CPU per packet with its captures minus with
// none, and cnitrace's minus the tcpdumps' within each round. A rejected
// packet runs the same kernel code around the filter whoever opened the
// socket (a clone on transmit, the filter, the ring's bookkeeping), so the
// two sides' taps are close, and they are ~90% of the fair ratio's terms:
// its verdict rests on their difference, which the table shows beside it
// (-561, -293 and -91 ns a packet, the last undecided, in three runs).
type floodTaps struct {
	CnitraceNS interval `json:"cnitrace_ns_per_packet"`
	TcpdumpNS  interval `json:"tcpdump_ns_per_packet"`
	DiffNS     interval `json:"cnitrace_minus_tcpdump_ns_per_packet"`
	// TapsShare is the median share of the fair ratio's comparator that
	// is the tcpdumps' taps on the flood.
	TapsShare float64 `json:"taps_share_of_comparator"`
}

// newFloodTaps sums up the taps' cost per flood packet over rounds.
func newFloodTaps(rounds []cpuRound) *floodTaps {
	var cni, tcp, diff, share []float64
	for _, rd := range rounds {
		if rd.FloodAlone == nil || rd.FloodCnitrace == nil || rd.FloodTcpdump == nil {
			continue
		}
		c, t := tapNS(rd.FloodCnitrace, rd.FloodAlone), tapNS(rd.FloodTcpdump, rd.FloodAlone)
		cni, tcp, diff = append(cni, c), append(tcp, t), append(diff, c-t)
		taps := tapCost(rd.FloodTcpdump, rd.FloodAlone)
		if all := rd.PingCPU + rd.TcpdumpCPU + taps; all > 0 {
			share = append(share, taps/all)
		}
	}
	if len(cni) == 0 {
		return nil
	}
	return &floodTaps{CnitraceNS: meanCI(cni), TcpdumpNS: meanCI(tcp), DiffNS: meanCI(diff), TapsShare: median(share)}
}

// cpuRound is one round: cnitrace alone, then ping with five tcpdumps
// (ping's pattern carries the magic at pingPatternAt, the tcpdumps' filter
// reads it there), then, under a flood, the flood alone; at 1 ms, the
// bench's prober with five tcpdumps and alone, in alternating order.
type cpuRound struct {
	CnitraceCPU    float64         `json:"cnitrace_cpu_s"`
	CnitraceSys    float64         `json:"cnitrace_sys_s"`
	Answered       int             `json:"cnitrace_answered"`
	CnitraceFewest uint64          `json:"cnitrace_fewest_captured"` // packets at its emptiest point
	Missing        int             `json:"answered_probes_missing_at_a_point"`
	RingDrops      uint64          `json:"ring_drops"`
	PingCPU        float64         `json:"ping_cpu_s"`
	PingSys        float64         `json:"ping_sys_s"`
	PingReplies    int             `json:"ping_replies"`
	TcpdumpCPU     float64         `json:"tcpdump_cpu_s"`
	Tcpdump        []tcpdumpCounts `json:"tcpdump_counts"` // per point, in path order
	FloodCnitrace  *floodStats     `json:"flood_with_cnitrace,omitempty"`
	FloodTcpdump   *floodStats     `json:"flood_with_tcpdump,omitempty"`
	FloodAlone     *floodStats     `json:"flood_alone,omitempty"`
	ProberBare     *proberRun      `json:"prober_bare,omitempty"`         // at 1 ms: the bench's prober, no capture
	ProberTapped   *proberRun      `json:"prober_with_tcpdump,omitempty"` // the same while the five tcpdumps capture it
	ProberTcpdump  []tcpdumpCounts `json:"prober_tcpdump_counts,omitempty"`
	MachineCni     cpuStat         `json:"machine_during_cnitrace"`
	MachineCmp     cpuStat         `json:"machine_during_comparator"`
	Ratio          float64         `json:"ratio"`
	FairRatio      float64         `json:"fair_ratio,omitempty"`
	Problem        string          `json:"problem,omitempty"` // why the round cannot be judged
	proberSeen     tcpdumpResult   // what the tcpdumps capturing the prober saw, for proberProblem
}

// loadKeep is what must not get worse under the flood.
type loadKeep struct {
	FloodPPS  float64 `json:"flood_packets_per_second"` // the lowest of the rounds
	Probes    int     `json:"probes"`
	Answered  int     `json:"answered"`
	Missing   int     `json:"answered_probes_missing_at_a_point"`
	RingDrops uint64  `json:"ring_drops"`
	Goal      string  `json:"goal"`
	Verdict   verdict `json:"verdict"`
}

const minFloodPPS = 150_000

type cpuSpec struct {
	probes   int
	interval time.Duration
	flood    bool
	fast     bool // compare with twice the tcpdumps alone
}

func (b *bench) cpu(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	res := &cpuResult{Billing: billing}
	for _, s := range []struct {
		dst  **cpuCompare
		spec cpuSpec
	}{
		{&res.Plain, cpuSpec{probes: b.counts(300, 100), interval: 10 * time.Millisecond}},
		{&res.Flood, cpuSpec{probes: b.counts(300, 100), interval: 10 * time.Millisecond, flood: true}},
		{&res.Fast, cpuSpec{probes: b.counts(1000, 300), interval: time.Millisecond, fast: true}},
	} {
		if *s.dst, err = b.cpuCompare(ctx, l, s.spec); err != nil {
			return err
		}
	}
	res.Load = keepUnderFlood(res.Flood)
	r.CPU = res
	return nil
}

// cpuRounds is how many rounds each CPU comparison runs: with 3 the
// intervals were 0.3-0.9 wide (b1d9cd5: 1.01 [0.69, 1.33] at 10 ms), and
// with 6 still 0.2 (d99c9bc: 1.12 [1.01, 1.23]), too wide to tell a ratio
// near parity from either side of it.
const cpuRounds = 10

// cpuCompare runs the rounds of s and judges them. Where the bench
// computes a fair ratio (under the flood, and at 1 ms) the goal is judged
// on it, and the ratio as billed is shown beside: as billed, the taps'
// work on the flood falls on the flood's senders, not on either side, and
// at 1 ms cnitrace pays its probes' whole round trip while the tcpdumps
// pay nothing of ping's (billing says how each is measured).
func (b *bench) cpuCompare(ctx context.Context, l *lab.Lab, s cpuSpec) (*cpuCompare, error) {
	c := &cpuCompare{Probes: s.probes, IntervalMS: float64(s.interval) / float64(time.Millisecond), Flood: s.flood,
		Comparator: "iputils ping (same count and interval) + 5 buffered tcpdumps", Goal: "cnitrace <= comparator (95% CI)"}
	if s.fast {
		c.Comparator = "2 x 5 buffered tcpdumps alone (capturing ping -i 0.001)"
	}
	for i := range b.counts(cpuRounds, 2) {
		rd, err := b.cpuRound(ctx, l, s, i)
		if err != nil {
			return nil, err
		}
		c.Rounds = append(c.Rounds, rd)
	}
	c.judge(s)
	return c, nil
}

// judge sums up c's rounds: the ratio as billed, the fair ratio where s
// has one, and the verdict on the fair one if so; a round that could not
// be judged makes the comparison not judged.
func (c *cpuCompare) judge(s cpuSpec) {
	var ratios, fair []float64
	problem := ""
	for _, rd := range c.Rounds {
		ratios, fair = append(ratios, rd.Ratio), append(fair, rd.FairRatio)
		if problem == "" {
			problem = rd.Problem
		}
	}
	c.Ratio = meanCI(ratios)
	c.Verdict = judge(c.Ratio, atMost(1))
	switch {
	case s.flood:
		c.Goal = "cnitrace <= comparator (95% CI), with the taps' work on the flood billed to each side (fair)"
	case s.fast:
		c.Goal = "cnitrace <= 2 x 5 tcpdumps (95% CI), without the probes' own round trip on either side, each with its taps' copies (fair)"
	}
	if s.flood {
		c.FloodTaps = newFloodTaps(c.Rounds)
	}
	if s.flood || s.fast {
		f := meanCI(fair)
		c.FairRatio = &f
		c.Verdict = judge(f, atMost(1))
	}
	if problem != "" {
		c.Verdict = notJudged("%s", problem)
	}
}

// cpuRound measures cnitrace and its comparator, in turn, then (under a
// flood) the flood alone; at 1 ms, the bench's prober with and without
// the tcpdumps. Odd rounds run the comparator first, so that a drift over
// a round (the caches a run leaves warm, the machine's other work) does
// not always fall on the same side.
func (b *bench) cpuRound(ctx context.Context, l *lab.Lab, s cpuSpec, i int) (cpuRound, error) {
	var rd cpuRound
	dur := time.Duration(s.probes)*s.interval + 700*time.Millisecond
	flooded := func(fn func() error) (*floodStats, error) {
		if !s.flood {
			return nil, fn()
		}
		st, err := withFlood(ctx, l, dur, fn)
		return &st, err
	}
	count, interval := strconv.Itoa(s.probes), s.interval.String()
	var fewestAt string
	runCnitrace := func() error {
		var t traceRun
		m0 := machineStat()
		fl, err := flooded(func() (err error) { t, err = b.trace(ctx, l, "--count", count, "--interval", interval); return err })
		rd.MachineCni = machineStat().sub(m0)
		if err != nil {
			return err
		}
		rd.FloodCnitrace = fl
		rd.CnitraceCPU, rd.CnitraceSys, rd.Answered = t.cpu.Seconds(), t.sys.Seconds(), t.report.Probes.Received
		rd.RingDrops = t.report.ringDrops()
		for _, sg := range t.report.Segments {
			rd.Missing = max(rd.Missing, rd.Answered-sg.Seen)
		}
		rd.CnitraceFewest, fewestAt = t.report.capturedEverywhere()
		return nil
	}
	var tr tcpdumpResult
	runComparator := func() error {
		td, err := startTcpdumps(ctx, l, tcpdumpFilter(probe.Magic, pingPatternAt, lab.VXLANPort))
		if err != nil {
			return err
		}
		var p pingRun
		m1 := machineStat()
		fl, perr := flooded(func() (err error) {
			p, err = b.pingWith(ctx, l, s.probes, s.interval, "-p", fmt.Sprintf("%08x", probe.Magic))
			return err
		})
		var terr error
		tr, terr = td.stop()
		rd.MachineCmp = machineStat().sub(m1)
		if perr != nil || terr != nil {
			return fmt.Errorf("ping and tcpdump: %w", errOr(perr, terr))
		}
		rd.FloodTcpdump = fl
		rd.PingCPU, rd.PingSys, rd.PingReplies = p.cpu.Seconds(), p.sys.Seconds(), len(p.rtts)
		rd.TcpdumpCPU, rd.Tcpdump = tr.CPU.Seconds(), tr.Counts
		return nil
	}
	steps := []func() error{runCnitrace, runComparator}
	if i%2 == 1 {
		steps[0], steps[1] = runComparator, runCnitrace
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return rd, err
		}
	}
	if s.flood {
		alone, err := withFlood(ctx, l, dur, func() error { return nil })
		if err != nil {
			return rd, err
		}
		rd.FloodAlone = &alone
	}
	if s.fast {
		if err := b.proberRounds(ctx, l, s, &rd, i%2 == 1); err != nil {
			return rd, err
		}
	}
	rd.judge(s, tr, fewestAt)
	return rd, nil
}

// proberRounds measures the bench's prober, the same count and interval,
// while five tcpdumps with the comparison's filter capture it, and with no
// capture: the round trip's cost to its sender with and without their taps.
// bareFirst swaps the order (odd rounds), so that a drift over the round
// does not always fall on the same side.
func (b *bench) proberRounds(ctx context.Context, l *lab.Lab, s cpuSpec, rd *cpuRound, bareFirst bool) error {
	var bare, tapped proberRun
	var tr tcpdumpResult
	runBare := func() (err error) { bare, err = bareProbe(ctx, l, s.probes, s.interval); return err }
	runTapped := func() error {
		td, err := startTcpdumps(ctx, l, tcpdumpFilter(probe.Magic, pingPatternAt, lab.VXLANPort))
		if err != nil {
			return err
		}
		var perr, terr error
		tapped, perr = bareProbe(ctx, l, s.probes, s.interval)
		tr, terr = td.stop()
		if perr != nil || terr != nil {
			return fmt.Errorf("prober and tcpdump: %w", errOr(perr, terr))
		}
		return nil
	}
	steps := []func() error{runTapped, runBare}
	if bareFirst {
		steps[0], steps[1] = runBare, runTapped
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	rd.ProberTapped, rd.ProberBare, rd.ProberTcpdump, rd.proberSeen = &tapped, &bare, tr.Counts, tr
	return nil
}

// judge computes the round's ratios and says why it cannot be judged,
// if so: a comparator (or cnitrace) that did not see the packets it is
// compared on, or a flood short of its rate.
func (rd *cpuRound) judge(s cpuSpec, tr tcpdumpResult, fewestAt string) {
	comparator := rd.PingCPU + rd.TcpdumpCPU
	if s.fast {
		comparator = 2 * rd.TcpdumpCPU
	}
	rd.Ratio = rd.CnitraceCPU / comparator
	if s.flood {
		tapsCni := tapCost(rd.FloodCnitrace, rd.FloodAlone)
		tapsTcp := tapCost(rd.FloodTcpdump, rd.FloodAlone)
		rd.FairRatio = (rd.CnitraceCPU + tapsCni) / (comparator + tapsTcp)
	}
	if s.fast {
		rd.FairRatio = fastFairRatio(rd.CnitraceCPU, rd.TcpdumpCPU, s.probes, rd.ProberBare.nsPerProbe(), rd.ProberTapped.nsPerProbe())
	}
	switch {
	case tr.sawAll(uint64(2*rd.PingReplies)) != "":
		rd.Problem = tr.sawAll(uint64(2 * rd.PingReplies))
	case s.fast && rd.proberProblem() != "":
		rd.Problem = rd.proberProblem()
	case rd.CnitraceFewest < uint64(2*rd.Answered) || rd.Answered == 0:
		rd.Problem = fmt.Sprintf("cnitrace's capture at %s saw %d packets for %d answered probes", fewestAt, rd.CnitraceFewest, rd.Answered)
	case s.flood && min(rd.FloodCnitrace.PPS, rd.FloodTcpdump.PPS) < minFloodPPS:
		rd.Problem = fmt.Sprintf("flood reached %.0f packets/s, under %d", min(rd.FloodCnitrace.PPS, rd.FloodTcpdump.PPS), minFloodPPS)
	}
}

// proberProblem says why the prober's figures cannot stand for a probe's
// round trip, if so: a prober that did not get every reply (its round trips
// did not all happen), or tcpdumps that did not capture its packets (their
// taps' copies are what is measured). It returns "" or what was missing.
func (rd *cpuRound) proberProblem() string {
	for _, x := range []struct {
		name string
		p    *proberRun
	}{{"with the tcpdumps", rd.ProberTapped}, {"alone", rd.ProberBare}} {
		switch {
		case x.p == nil:
			return "the bench's prober did not run " + x.name
		case x.p.Probes == 0 || x.p.Replies < x.p.Probes:
			return fmt.Sprintf("the bench's prober %s got %d replies to %d probes", x.name, x.p.Replies, x.p.Probes)
		}
	}
	if short := rd.proberSeen.sawAll(uint64(2 * rd.ProberTapped.Replies)); short != "" {
		return "capturing the bench's prober, " + short
	}
	return ""
}

// tapCost is the senders' extra CPU, in seconds, over what the same
// packets cost them with no capture open; a negative difference is noise
// and counts as 0.
func tapCost(with, alone *floodStats) float64 {
	if with == nil || alone == nil {
		return 0
	}
	return max(0, tapNS(with, alone)*float64(with.Packets)) / 1e9
}

// tapNS is the senders' CPU per packet with captures (with) minus with
// none (alone), in nanoseconds, as measured: negative when noise says so.
func tapNS(with, alone *floodStats) float64 {
	return with.nsPerPacket() - alone.nsPerPacket()
}

func keepUnderFlood(c *cpuCompare) *loadKeep {
	k := &loadKeep{Goal: fmt.Sprintf("flood >= %d packets/s; 0 answered probes missing at a point; 0 ring drops", minFloodPPS)}
	for i, rd := range c.Rounds {
		if i == 0 || rd.FloodCnitrace.PPS < k.FloodPPS {
			k.FloodPPS = rd.FloodCnitrace.PPS
		}
		k.Probes += c.Probes
		k.Answered += rd.Answered
		k.Missing = max(k.Missing, rd.Missing)
		k.RingDrops += rd.RingDrops
	}
	k.Verdict = allOf(metIf(k.Missing == 0), metIf(k.RingDrops == 0))
	if k.FloodPPS < minFloodPPS {
		k.Verdict = notJudged("flood reached %.0f packets/s, under %d", k.FloodPPS, minFloodPPS)
	}
	return k
}

func machineStat() cpuStat {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	defer f.Close()
	s, _ := parseCPUStat(f)
	return s
}

func errOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
