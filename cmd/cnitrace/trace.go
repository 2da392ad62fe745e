package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

func traceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c traceConfig
	var to, format string
	const synopsis = "--netns FILE | --pid PID --to IP [flags]"
	fs := newFlagSet("trace")
	addSourceFlags(fs, &c, &to)
	addProbeFlags(fs, &c, &format)
	if err := parseFlags(fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := c.validate(to, format); err != nil {
		return err
	}
	if err := c.probeConfig().Validate(); err != nil {
		return usagef("--%v", err) // probe names its fields as the flags are named
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
	cfg := captureConfig(path)
	cfg.Sink = acc.Add
	// Captures outlive a cancelled probe run: they are drained for the partial report.
	sess, err := capture.Start(context.WithoutCancel(ctx), captureTargets(path, pod, node), cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "cnitrace: capturing on %d interfaces, sending %d probes to %s\n", len(path.Points), c.count, c.to)
	probes, perr := sendProbes(ctx, c, pod, runID)
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
