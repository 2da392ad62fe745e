package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

func traceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c traceConfig
	var to, format string
	const synopsis = "--netns FILE | --pid PID --to IP [flags]"
	fs := cli.NewFlagSet("trace")
	addSourceFlags(fs, &c, &to)
	addProbeFlags(fs, &c, &format)
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := c.validate(to, format); err != nil {
		return err
	}
	if err := c.probeConfig().Validate(); err != nil {
		return cli.Usagef("--%v", err) // probe names its fields as the flags are named
	}
	return trace(ctx, &c, stdout, stderr)
}

// trace is the main job, as a list of named steps: resolve, discover, arm
// captures, probe, drain, correlate, render.
func trace(ctx context.Context, c *traceConfig, stdout, stderr io.Writer) error {
	pod, node, path, err := c.resolve()
	if err != nil {
		return err
	}
	defer pod.Close()
	defer node.Close()
	fmt.Fprintf(stderr, "cnitrace: path %s\n", path)

	w, finish, err := c.output(stdout)
	if err != nil {
		return err
	}
	r, err := measure(ctx, c, pod, node, path, stderr)
	if err == nil {
		err = report.Render(w, r, c.format)
	}
	if ferr := finish(err == nil); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if r.Incomplete {
		return fmt.Errorf("interrupted: the report above is partial")
	}
	if r.Probes.Received < r.Probes.Sent {
		return errFinding
	}
	return nil
}

// measure arms the captures, probes, drains the captures and correlates.
// An interrupted probe run still yields a report, marked incomplete.
func measure(ctx context.Context, c *traceConfig, pod, node *topology.NetNS, path *topology.Path, stderr io.Writer) (*report.Result, error) {
	// Observations go straight into the accumulator: a long run keeps a few
	// bytes per probe and point, not every packet.
	runID := probe.NewRunID()
	acc, err := report.NewAccumulator(path, runID)
	if err != nil {
		return nil, fmt.Errorf("correlate: %w", err)
	}
	base, err := openBaseline(c, node, runID)
	if err != nil {
		return nil, err
	}
	if base != nil {
		defer base.conn.Close()
		acc.SetBaseline(base.cfg.RunID)
	}
	cfg := captureConfig(path)
	cfg.Sink = acc.Add
	// Captures outlive a cancelled probe run: they are drained for the partial report.
	sess, err := capture.Start(context.WithoutCancel(ctx), captureTargets(path, pod, node), cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "cnitrace: capturing on %d interfaces, sending %d probes to %s%s\n", len(path.Points), c.count, c.to, base.describe())
	probes, baseProbes, perr := sendAll(ctx, c, pod, runID, base)
	capt, cerr := sess.Stop()
	if perr != nil && !errors.Is(perr, context.Canceled) {
		return nil, perr
	}
	if cerr != nil {
		return nil, fmt.Errorf("drain captures: %w", cerr)
	}
	warnDrops(capt.Stats, stderr)
	r, err := acc.Result(probes, capt.Stats)
	if err != nil {
		return nil, fmt.Errorf("correlate: %w", err)
	}
	r.Incomplete = perr != nil
	r.Baseline = base.compare(r, probes, baseProbes, acc)
	return r, nil
}

func sendProbes(ctx context.Context, c *traceConfig, pod *topology.NetNS, runID uint64) (*probe.Result, error) {
	conn, err := probe.ListenFor(pod, c.to) // ICMPv6 for an IPv6 target
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cfg := c.probeConfig()
	cfg.RunID = runID
	return probe.Run(ctx, conn, cfg)
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

func warnDrops(stats []capture.PointStats, stderr io.Writer) {
	for _, s := range stats {
		if s.Drops > 0 {
			fmt.Fprintf(stderr, "cnitrace: warning: capture on %s dropped %d packets; probes missing there may not be lost\n", s.Point, s.Drops)
		}
	}
}

// sendAll sends the pod's probes and, with --baseline, the node's
// alongside; a failure of the pod's run stops the node's.
func sendAll(ctx context.Context, c *traceConfig, pod *topology.NetNS, runID uint64, base *baselineRun) (probes, baseProbes *probe.Result, err error) {
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	wait := base.start(bctx)
	probes, err = sendProbes(ctx, c, pod, runID)
	if err != nil && !errors.Is(err, context.Canceled) {
		stop()
	}
	baseProbes, berr := wait()
	return probes, baseProbes, worse(err, berr)
}

// baselineRun is the node half of trace --baseline: the same probes sent
// to the same target from the node's netns, where a hostNetwork pod would
// send them from, interleaved with the pod's.
type baselineRun struct {
	conn net.PacketConn // opened in the node's netns
	cfg  probe.Config
	ns   string // the node netns, as report.Baseline.NetNS shows it
}

// openBaseline opens the node's probe socket for --baseline, with a run id
// of its own so that its tokens never mix with the pod run's; nil without
// --baseline.
func openBaseline(c *traceConfig, node *topology.NetNS, podRunID uint64) (*baselineRun, error) {
	if !c.baseline {
		return nil, nil
	}
	conn, err := probe.ListenFor(node, c.to)
	if err != nil {
		return nil, fmt.Errorf("open the baseline probe socket in the node netns %s: %w", node, err)
	}
	cfg := c.probeConfig()
	for cfg.RunID == 0 || cfg.RunID == podRunID {
		cfg.RunID = probe.NewRunID()
	}
	return &baselineRun{conn: conn, cfg: cfg, ns: node.ID()}, nil
}

// start sends the baseline probes on their own goroutine, beginning half
// an interval from now so that they fall between the pod's, and returns a
// function that waits for their result. On a nil b it returns at once.
func (b *baselineRun) start(ctx context.Context) func() (*probe.Result, error) {
	if b == nil {
		return func() (*probe.Result, error) { return nil, nil }
	}
	type result struct {
		r   *probe.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		delay := time.NewTimer(b.cfg.Interval / 2)
		defer delay.Stop()
		select {
		case <-ctx.Done():
			done <- result{&probe.Result{RunID: b.cfg.RunID, Target: b.cfg.Target, Size: b.cfg.Size}, ctx.Err()}
			return
		case <-delay.C:
		}
		r, err := probe.Run(ctx, b.conn, b.cfg)
		if err != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("baseline probes from the node netns %s: %w", b.ns, err)
		}
		done <- result{r, err}
	}()
	return func() (*probe.Result, error) {
		res := <-done
		return res.r, res.err
	}
}

// describe completes the progress line: nothing on a nil b.
func (b *baselineRun) describe() string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf(", and as many from the node netns %s (baseline)", b.ns)
}

// compare sets the baseline run against the pod's; nil on a nil b.
func (b *baselineRun) compare(r *report.Result, pod, node *probe.Result, acc *report.Accumulator) *report.Baseline {
	if b == nil {
		return nil
	}
	bl := acc.Baseline(r, pod, node)
	if bl != nil {
		bl.NetNS = b.ns
	}
	return bl
}

// worse returns the error of two concurrent probe runs that decides the
// outcome: a failure before a cancellation, a cancellation before nil.
func worse(a, b error) error {
	if a == nil || (errors.Is(a, context.Canceled) && b != nil && !errors.Is(b, context.Canceled)) {
		return b
	}
	return a
}
