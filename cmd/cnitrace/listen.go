package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/cmd/internal/output"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// listenConfig is what listen was asked to do: where the target pod is
// (traceConfig's source flags; to is --from), for how long, and where the
// stamps go.
type listenConfig struct {
	traceConfig
	readyFile string // --ready-file: created once every capture is armed, removed on exit
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
	fs.StringVar(&c.readyFile, "ready-file", "", "create `file` once every capture is armed, for scripts that start the trace then; removed when listen exits")
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
	if c.readyFile != "" && c.out != "" && c.out != "-" && sameFile(c.out, c.readyFile) {
		return cli.Usagef("--out %s and --ready-file %s name the same file: give each a file of its own", c.out, c.readyFile)
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
	ready, err := openReady(c.readyFile, stdout)
	if err != nil {
		return err
	}
	defer ready.close()
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
	if err := ready.arm(); err != nil {
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
	capt, cerr := sess.Finish() // the counters are final; the rings close while the file is written
	defer sess.Close()          // on the ways out before the one below
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
	if err := sess.Close(); err != nil {
		return fmt.Errorf("close captures: %w", err)
	}
	return nil
}

// readyFile is --ready-file: opened with the output, before anything is
// armed, so a path that cannot be created is a usage error then; a file an
// earlier run left there is removed first, so it cannot tell a waiting
// script the captures are armed before they are. It appears once they
// are (arm) and is removed when listen exits, however it exits (close).
type readyFile struct {
	path  string
	f     *output.File
	ours  bool // the path was free: close removes what arm created
	armed bool
}

// openReady opens --ready-file path; nil when it is not given.
func openReady(path string, stdout io.Writer) (*readyFile, error) {
	if path == "" {
		return nil, nil
	}
	if path == "-" {
		return nil, cli.Usagef("--ready-file -: stdout carries the listen file; name a file for a script to wait for, such as /tmp/ready")
	}
	fi, err := os.Lstat(path)
	if err == nil && (fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
		// An earlier run's; never a device or a FIFO someone made.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, cli.Usagef("--ready-file %s: an earlier file there cannot be removed: %v (remove it, or name another file)", path, errors.Unwrap(err))
		}
	}
	_, err = os.Lstat(path)
	ours := errors.Is(err, fs.ErrNotExist)
	f, err := openOutput("--ready-file", path, stdout)
	if err != nil {
		return nil, err
	}
	return &readyFile{path: path, f: f, ours: ours}, nil
}

// arm creates the file: every capture is armed.
func (r *readyFile) arm() error {
	if r == nil {
		return nil
	}
	if err := r.f.Commit(); err != nil {
		return fmt.Errorf("create --ready-file %s: %w", r.path, err)
	}
	r.armed = true
	return nil
}

// close removes the file arm created, or discards it if it was never armed.
func (r *readyFile) close() {
	if r == nil {
		return
	}
	r.f.Abort() // does nothing once committed
	if r.armed && r.ours {
		_ = os.Remove(r.path) // best effort: listen is done either way
	}
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
