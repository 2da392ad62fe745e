package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

func traceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := traceConfig{args: append([]string{program, "trace"}, args...)}
	var to, format string
	const synopsis = "--pod [NAMESPACE/]NAME | --netns FILE | --pid PID --to IP [flags]"
	fs := cli.NewFlagSet("trace")
	addSourceFlags(fs, &c, traceSource)
	fs.StringVar(&to, "to", "", toUsage)
	addProtoFlags(fs, &c)
	addProbeFlags(fs, &c, &format)
	addMergeFlags(fs, &c)
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := c.validate(to, format); err != nil {
		return err
	}
	if err := c.validateForMerge(); err != nil {
		return err
	}
	if err := c.checkOutputsDistinct(); err != nil {
		return err
	}
	if err := c.probeConfig().Validate(); err != nil {
		return cli.Usagef("--%v", err) // probe names its fields as the flags are named
	}
	return trace(ctx, &c, stdout, stderr)
}

// trace is the main job, as a list of named steps: open the outputs,
// resolve, discover, take the node's state, arm captures, probe, drain,
// correlate, render. The outputs (--out, --pcap, --bundle) are opened
// first, so that a path one cannot be written to is found before anything
// is sent; they are completed only with the report, and discarded on every
// other way out.
func trace(ctx context.Context, c *traceConfig, stdout, stderr io.Writer) error {
	out, err := openOutput("--out", c.out, stdout)
	if err != nil {
		return err
	}
	defer out.Abort() // does nothing once committed
	ev, err := openEvidence(c, stdout)
	if err != nil {
		return err
	}
	defer ev.abort()
	pod, node, path, err := c.resolve(ctx, stderr)
	if err != nil {
		return err
	}
	defer pod.Close()
	defer node.Close()
	fmt.Fprintf(stderr, "cnitrace: path %s\n", path)
	ev.snapshot(ctx, c, pod, node, path, stderr)

	run := newRunInfo(c.args)
	r, sess, err := measure(ctx, c, pod, node, path, ev, stderr)
	if err != nil {
		return err
	}
	defer sess.Close() // on the ways out before the one below
	run.end()
	r.Run = run.Run
	c.nameSource(&r.Source)
	if err := report.Render(out, r, c.format); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	if err := ev.finish(r, path, stderr); err != nil {
		return err
	}
	if err := sess.Close(); err != nil {
		return fmt.Errorf("close captures: %w", err)
	}
	if r.Incomplete {
		return fmt.Errorf("interrupted: the report above is partial")
	}
	if r.Lost() > 0 { // late replies and our own socket's drops are not the path's
		return errFinding
	}
	return nil
}

// measure opens the probe sockets, arms the captures, probes from every
// source at once, drains the captures and correlates. An interrupted probe
// run still yields a report, marked incomplete. Every captured packet also
// goes to ev. The captures' rings are still closing when it returns (a
// ring's close waits for RCU grace periods, the report need not): the
// caller closes the session, which waits for them, once the report is out.
func measure(ctx context.Context, c *traceConfig, pod, node *topology.NetNS, path *topology.Path, ev *evidence, stderr io.Writer) (*report.Result, *capture.Session, error) {
	sources, known, err := openSources(c, pod, node)
	if err != nil {
		return nil, nil, err
	}
	defer closeSources(sources)
	// Observations and finished probes go straight into the accumulator,
	// whose memory is bounded however long the run.
	acc, err := report.NewAccumulator(path, known)
	if err != nil {
		return nil, nil, fmt.Errorf("correlate: %w", err)
	}
	feed(acc, sources)
	stamps, err := c.newStampRecorder(path, known[0].RunID) // nil without --for-merge
	if err != nil {
		return nil, nil, fmt.Errorf("correlate: %w", err)
	}
	cfg := captureConfig(path)
	cfg.Rate = captureRate(c, len(sources))
	cfg.KeepFrames = ev.keepFrames()
	cfg.Armed = ev.armed // the pcapng's interface blocks, before the first packet
	cfg.Sink = func(o capture.Observation) {
		acc.Add(o)
		ev.observe(o)
		stamps.add(o)
	}
	// Captures outlive a cancelled probe run: they are drained for the partial report.
	sess, err := capture.Start(context.WithoutCancel(ctx), captureTargets(path, pod, node), cfg)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "cnitrace: capturing on %d interfaces, sending %s to %s%s\n", len(path.Points), describeRun(sources[0].Config), c.to, describeBaseline(known))
	var counted probe.Progress // the traced source's, for the progress line
	sources[0].Config.Progress = &counted
	stopProgress := startProgress(stderr, c.quiet, sources[0].Config, &counted)
	probes, perr := probe.RunSources(ctx, sources)
	stopProgress()
	capt, cerr := sess.Finish() // the counters are final; the rings close meanwhile
	r, err := result(acc, stamps, capt, cerr, sources, probes, perr, ev, stderr)
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	return r, sess, nil
}

// result correlates a finished run: what the sources sent (probes, and
// perr, their run's error), what the captures saw (capt, and cerr, their
// drain's error) and every point's drops, which go to stderr and to ev.
func result(acc *report.Accumulator, stamps *stampRecorder, capt *capture.Capture, cerr error, sources []probe.Source, probes []*probe.Result, perr error, ev *evidence, stderr io.Writer) (*report.Result, error) {
	if perr != nil && !errors.Is(perr, context.Canceled) {
		return nil, perr
	}
	if cerr != nil {
		return nil, fmt.Errorf("drain captures: %w", cerr)
	}
	warnDrops(capt.Stats, sources, probes, stderr)
	if err := ev.captured(capt.Stats, stderr); err != nil {
		return nil, err
	}
	r, err := acc.Result(report.Recorded{Probes: probes, Stats: capt.Stats, Interrupted: perr != nil})
	if err != nil {
		return nil, fmt.Errorf("correlate: %w", err)
	}
	stamps.attach(r)
	return r, nil
}

// openSources opens a probe socket for every source of the run: the pod's
// and, with --baseline, the node's, where a hostNetwork pod would send
// from. Each gets a run id of its own, so that their tokens never mix. It
// returns the sources as probe sends them and as report tells them apart,
// in the same order; on error, nothing is left open.
func openSources(c *traceConfig, pod, node *topology.NetNS) ([]probe.Source, []report.ProbeSource, error) {
	conn, err := probe.Open(pod, c.probeConfig()) // ICMPv6 for an IPv6 target; TCP, UDP as --proto says
	if err != nil {
		return nil, nil, err
	}
	sources := []probe.Source{{Conn: conn, Config: c.probeConfig()}}
	sources[0].Config.RunID = probe.NewRunID()
	if c.baseline {
		if conn, err = probe.Open(node, c.probeConfig()); err != nil {
			closeSources(sources)
			return nil, nil, fmt.Errorf("open the baseline probe socket in the node netns %s: %w", node, err)
		}
		base := probe.Source{Name: fmt.Sprintf("the node netns %s (baseline)", node.ID()), Conn: conn, Config: c.probeConfig()}
		for base.Config.RunID == 0 || base.Config.RunID == sources[0].Config.RunID {
			base.Config.RunID = probe.NewRunID()
		}
		sources = append(sources, base)
	}
	known := []report.ProbeSource{{RunID: sources[0].Config.RunID, NetNS: pod.ID(), Proto: c.proto, Port: c.port}}
	for _, s := range sources[1:] {
		known = append(known, report.ProbeSource{RunID: s.Config.RunID, NetNS: node.ID(), Proto: c.proto, Port: c.port})
	}
	return sources, known, nil
}

// feed makes every source hand its finished probes to acc, so that
// neither the prober nor the report keeps every probe of a long run.
func feed(acc *report.Accumulator, sources []probe.Source) {
	for i := range sources {
		sources[i].Config.Sink = func(p probe.Probe) { acc.AddProbe(i, p) }
	}
}

// describeRun says how many probes a source sends: "30 probes", "probes
// for 10m0s", "at most 1000 probes in 10s".
func describeRun(cfg probe.Config) string {
	switch {
	case cfg.Duration == 0:
		return fmt.Sprintf("%d probes", cfg.Count)
	case cfg.Count == 0:
		return fmt.Sprintf("probes for %s", cfg.Duration)
	}
	return fmt.Sprintf("at most %d probes in %s", cfg.Count, cfg.Duration)
}

func closeSources(sources []probe.Source) {
	for _, s := range sources {
		s.Conn.Close()
	}
}

// describeBaseline completes the progress line: nothing without a baseline.
func describeBaseline(known []report.ProbeSource) string {
	if len(known) < 2 {
		return ""
	}
	return fmt.Sprintf(", and as many from the node netns %s (baseline)", known[1].NetNS)
}

// captureTargets pairs every point with the open namespace it lives in.
func captureTargets(path *topology.Path, pod, node *topology.NetNS) []capture.Target {
	targets := make([]capture.Target, 0, len(path.Points))
	for _, pt := range path.Points {
		ns := node
		if pt.NetNS == pod.ID() {
			ns = pod
		}
		targets = append(targets, capture.Target{NS: ns, Point: pt})
	}
	return targets
}

// captureConfig passes the probe magic and the overlay ports discovered on
// the path to the capture filter.
func captureConfig(path *topology.Path) capture.Config {
	cfg := capture.Config{Magic: probe.Magic}
	for _, pt := range path.Points {
		if pt.TunnelPort > 0 && !slices.Contains(cfg.UDPPorts, uint16(pt.TunnelPort)) {
			cfg.UDPPorts = append(cfg.UDPPorts, uint16(pt.TunnelPort))
		}
	}
	return cfg
}

// captureRate tells the capture what the run makes at a point, so that it
// sizes its rings and how often it reads them to the run: a probe every
// --interval (never faster than probe.MinInterval) from each source, each
// probe 2 packets (request and reply, or the ICMP error answering it), a
// TCP SYN 3 (the SYN, its SYN-ACK or RST-ACK, and the pod's RST after a
// SYN-ACK), and the largest frame one makes. A run of one probe, whose
// --interval means nothing (it may be below the bound), says a second.
func captureRate(c *traceConfig, sources int) capture.Rate {
	packets := 2
	if c.proto == probe.TCP {
		packets = 3
	}
	interval := max(c.interval, probe.MinInterval)
	if c.probeConfig().Count == 1 {
		interval = max(interval, time.Second)
	}
	return capture.Rate{Interval: interval, Packets: packets * sources, Frame: probeFrame(c)}
}

// probeFrame is the largest frame a probe of c makes, from its Ethernet
// header on: its request, its reply, or an ICMP error quoting it (its own
// IP and ICMP headers before the probe's IP packet). An ICMP echo reply is
// its request's size; a TCP SYN probe carries at most 40 bytes of options
// (the token's among them) and its replies fewer; a DNS answer over UDP at
// most 512 bytes.
func probeFrame(c *traceConfig) int {
	ip := 20
	if c.to.Is6() && !c.to.Is4In6() {
		ip = 40
	}
	const eth, icmpHdr, udpHdr, tcpMax = 14, 8, 8, 60
	switch {
	case c.proto == probe.TCP:
		return eth + ip + icmpHdr + ip + tcpMax
	case c.proto == probe.UDP && c.port == 53:
		return eth + ip + udpHdr + 512
	case c.proto == probe.UDP:
		return eth + ip + icmpHdr + ip + udpHdr + c.size
	}
	return eth + ip + icmpHdr + c.size
}

// warnDrops says on stderr what cnitrace's own captures and probe sockets
// dropped: the report counts none of it against the path.
func warnDrops(stats []capture.PointStats, sources []probe.Source, probes []*probe.Result, stderr io.Writer) {
	for _, s := range stats {
		if s.Drops > 0 {
			fmt.Fprintf(stderr, "cnitrace: warning: capture on %s dropped %d packets; probes missing there may not be lost\n", s.Point, s.Drops)
		}
	}
	for i, res := range probes {
		if res == nil || res.SocketDrops == 0 {
			continue
		}
		name := "the probe socket"
		if n := sources[i].Name; n != "" {
			name = "the probe socket of " + n
		}
		fmt.Fprintf(stderr, "cnitrace: warning: %s dropped %d packets (its receive queue was full); replies it missed count as dropped by cnitrace, not lost\n", name, res.SocketDrops)
	}
}
