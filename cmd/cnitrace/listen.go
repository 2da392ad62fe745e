package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// listenConfig is what listen was asked to do: where the target pod is
// (traceConfig's source flags; to is --from), for how long, and where the
// stamps go.
type listenConfig struct {
	traceConfig
	readyFile string // --ready-file: created once every capture is armed
}

func listenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c listenConfig
	var from string
	const synopsis = "--pod [NAMESPACE/]NAME | --netns FILE | --pid PID --from IP [--duration D] [--out FILE]"
	fs := cli.NewFlagSet("listen")
	addSourceFlags(fs, &c.traceConfig, listenSource)
	fs.StringVar(&from, "from", "", "`IP` address the probes come from (the source pod's): the path toward it is the one captured on, as 'cnitrace path --to IP' finds it")
	fs.DurationVar(&c.duration, "duration", 0, "stop listening after this long (0: until interrupted, Ctrl-C or SIGTERM)")
	fs.StringVar(&c.out, "out", "", "write the listen file (JSON stamps) to `file` instead of stdout")
	fs.StringVar(&c.readyFile, "ready-file", "", "create `file` once every capture is armed, for scripts that start the trace then")
	fs.BoolVar(&c.quiet, "quiet", false, "print no progress line on stderr")
	if to, ok := toFlag(fs, args); ok {
		return cli.Usagef("listen --to %s: listen takes --from IP, the address the probes come from (the source pod's)", to)
	}
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := c.validateListen(from); err != nil {
		return err
	}
	return listen(ctx, &c, stdout, stderr)
}

// toFlag finds a --to among listen's args, which trace's user may give
// out of habit: listen has none, and says it takes --from instead.
func toFlag(fs *flag.FlagSet, args []string) (to string, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "--" || !strings.HasPrefix(a, "-"):
			return "", false
		case name == "to" && hasValue:
			return value, true
		case name == "to" && i+1 < len(args):
			return args[i+1], true
		case name == "to":
			return "", true
		case takesValue(fs, a):
			i++ // the flag's value, as the next argument
		}
	}
	return "", false
}

// validateListen checks what can be checked without touching the system.
func (c *listenConfig) validateListen(from string) error {
	if err := c.validateSource("say which pod the probes go to"); err != nil {
		return err
	}
	switch {
	case from == "":
		return cli.Usagef("listen needs --from IP, the address the probes come from (the source pod's, as 'kubectl get pod -o wide' shows it, for a trace to a Service too): this node's path toward its pod (through the overlay or not, by which uplink) depends on it, and listen captures on the path found toward it, as 'cnitrace path --to IP' finds it")
	case c.duration < 0:
		return cli.Usagef("--duration %s: must not be negative (0 listens until interrupted)", c.duration)
	}
	return c.validatePeer("--from", "source", from)
}

// listen is the job: open the output, resolve the pod and the node,
// discover the path toward --from, arm a capture on every point of it,
// record every probe of any run until the time is up or the run is
// interrupted, and write the stamps.
func listen(ctx context.Context, c *listenConfig, stdout, stderr io.Writer) error {
	out, err := openOutput("--out", c.out, stdout)
	if err != nil {
		return err
	}
	defer out.Abort() // does nothing once committed
	pod, node, path, err := c.resolve(ctx, stderr)
	if err != nil {
		return err
	}
	defer pod.Close()
	defer node.Close()
	if turn := path.TurnaroundOrInferred(); turn != topology.TurnNetwork {
		return cli.Usagef("--from %s: the path toward it turns around on this node (%s): listen on the node of the pod the probes go to, with --from the address of a source on another node (a trace to a pod on its own node needs no listener)", c.to, turn)
	}
	if !c.quiet {
		fmt.Fprintf(stderr, "cnitrace: path %s\n", path)
	}
	rec, err := report.NewRecorder(path, report.RoleListen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cfg := captureConfig(path)
	cfg.Sink = rec.Add
	start := time.Now()
	sess, err := capture.Start(context.WithoutCancel(ctx), captureTargets(path, pod, node), cfg)
	if err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		_, _ = sess.Stop()
		return err
	}
	if !c.quiet {
		fmt.Fprintf(stderr, "cnitrace: listening on %d interfaces for probes from %s to %s, %s\n", len(path.Points), c.to, path.Source.Addr, listenFor(c.duration))
	}
	var progress func()
	if !c.quiet {
		progress = func() {
			n, runs := rec.Seen()
			fmt.Fprintf(stderr, "cnitrace: listening for %s: %d probes of %d runs so far\n", time.Since(start).Round(time.Second), n, runs)
		}
	}
	wait(ctx, c.duration, progress)
	capt, cerr := sess.Stop()
	if cerr != nil {
		return fmt.Errorf("drain captures: %w", cerr)
	}
	warnDrops(capt.Stats, nil, nil, stderr)
	rec.Captured(capt.Stats)
	rec.Window(start, time.Now())
	host, _ := os.Hostname()
	stamps := rec.Stamps(host)
	if err := report.EncodeStamps(out, stamps); err != nil {
		return fmt.Errorf("write the listen file to %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("write the listen file to %s: %w", out.Name(), err)
	}
	if !c.quiet {
		fmt.Fprintf(stderr, "cnitrace: %s\n", listenSummary(stamps))
	}
	return nil
}

// ready creates --ready-file, if given.
func (c *listenConfig) ready() error {
	if c.readyFile == "" {
		return nil
	}
	f, err := os.OpenFile(c.readyFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return cli.Usagef("--ready-file %s: %v (name a file in a directory you may write)", c.readyFile, pe.Err)
	}
	if err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	return f.Close()
}

// listenProgress is how often listen says on stderr what it saw so far.
const listenProgress = 10 * time.Second

// wait returns after d, or when ctx is done; with d 0, only then. Every
// listenProgress meanwhile it calls progress, if set.
func wait(ctx context.Context, d time.Duration, progress func()) {
	var end <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		end = t.C
	}
	tick := time.NewTicker(listenProgress)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
			if progress != nil {
				progress()
			}
		}
	}
}

func listenFor(d time.Duration) string {
	if d == 0 {
		return "until interrupted"
	}
	return "for " + d.String()
}

// listenSummary says what the listen file holds.
func listenSummary(s *report.Stamps) string {
	n := 0
	for _, r := range s.Runs {
		n += len(r.Probes)
	}
	msg := fmt.Sprintf("saw %d probes of %d runs", n, len(s.Runs))
	if n == 0 {
		msg += ": no probe reached this node's path while it listened (is the trace's target this node's pod, and was it running?)"
	}
	if s.Overflow > 0 {
		msg += fmt.Sprintf("; %d more were not kept (at most %d)", s.Overflow, report.MaxStampProbes)
	}
	if s.Untokened > 0 {
		msg += fmt.Sprintf("; %d TCP answers matched no SYN seen here and are not in it", s.Untokened)
	}
	return msg
}
