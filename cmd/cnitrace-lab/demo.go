package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// traceExit is a demo whose cnitrace exited non-zero: cnitrace-lab exits
// with the same code (3 when the path lost probes), and prints nothing
// more, since cnitrace has said why.
type traceExit struct{ code int }

func (e *traceExit) Error() string { return fmt.Sprintf("cnitrace exited %d", e.code) }

// demoTraceFlags are the trace flags demo passes on to cnitrace when given;
// cnitrace checks their values, so a bad one is its usage error (exit 2).
var demoTraceFlags = []struct{ name, usage string }{
	{"count", "send `N` probes, like ping -c (cnitrace trace --count and its default)"},
	{"interval", "`duration` between probes, like ping -i"},
	{"timeout", "`duration` to wait for replies after the last probe, like ping -W"},
	{"size", "ICMP echo data `bytes`, like ping -s"},
	{"format", "report `format`: text or json"},
	{"out", "write the report to `file` instead of stdout"},
}

// interruptGrace is how long demo waits for cnitrace to print its partial
// report after passing on an interrupt, before it kills it.
const interruptGrace = 5 * time.Second

// labDemo builds a lab, runs `cnitrace trace` from pod 1 to pod 2 across it
// with the given trace flags, lets its report through and removes the lab.
// It runs the shipped binary, as a user would, so the demo proves it.
func labDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f lab.Faults
	var layout lab.Layout
	var bin string
	var baseline bool
	const synopsis = "[--cnitrace PATH] [--count N] [--interval D] [--format F] ... " + layoutSynopsis + " " + faultSynopsis
	fs := cli.NewFlagSet("demo")
	fs.StringVar(&bin, "cnitrace", "", "the cnitrace `binary` to run (default: the cnitrace next to cnitrace-lab)")
	passed := map[string]*string{}
	for _, tf := range demoTraceFlags {
		passed[tf.name] = fs.String(tf.name, "", tf.usage)
	}
	fs.BoolVar(&baseline, "baseline", false, "also probe from the node netns and report the pod path's overhead (cnitrace trace --baseline)")
	addLayoutFlag(fs, &layout, stderr)
	addFaultFlags(fs, &f)
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := checkFaults("demo", f); err != nil {
		return err
	}
	bin, err := cnitraceBinary(bin)
	if err != nil {
		return err
	}
	traceArgs := []string{"trace"}
	fs.Visit(func(fl *flag.Flag) {
		if v, ok := passed[fl.Name]; ok {
			traceArgs = append(traceArgs, "--"+fl.Name, *v)
		}
	})
	if baseline {
		traceArgs = append(traceArgs, "--baseline")
	}

	fmt.Fprintln(stderr, "cnitrace-lab: building the two-node lab...")
	l, err := lab.Up(ctx, lab.Config{Layout: layout, Faults: f}) // the delay line runs in this process
	if err != nil {
		return labError(err)
	}
	defer l.Close()
	traceArgs = append(traceArgs, l.TraceArgs()...)
	fmt.Fprintf(stderr, "cnitrace-lab: lab %s is up; tracing pod %s -> pod %s with %s\n", l.Name, l.Nodes[0].Pod.Addr, l.Nodes[1].Pod.Addr, shortPath(bin))
	return runTrace(ctx, bin, traceArgs, stdout, stderr)
}

// cnitraceBinary returns the cnitrace to run: bin when given, else the
// cnitrace in the directory of this executable.
func cnitraceBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", cli.Usagef("demo: --cnitrace: %v", err)
		}
		return bin, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("demo: find own executable: %w (give --cnitrace PATH)", err)
	}
	next := filepath.Join(filepath.Dir(self), "cnitrace")
	if _, err := os.Stat(next); err != nil {
		return "", cli.Usagef("demo: no cnitrace next to %s (run 'make build', or give --cnitrace PATH)", self)
	}
	return next, nil
}

// shortPath is p relative to the working directory when p is under it
// (bin/cnitrace after make demo), else p.
func shortPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return p
}

// runTrace runs cnitrace with args, its output going straight to ours. An
// interrupt is passed on as SIGINT, so cnitrace prints its partial report.
func runTrace(ctx context.Context, bin string, args []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = interruptGrace
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 {
		return &traceExit{code: exit.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	return nil
}
