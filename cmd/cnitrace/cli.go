package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cnitrace/cnitrace/topology"
)

// Exit codes (docs/cli.md).
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure: permissions, sockets, netlink
	exitUsage   = 2 // bad flags or arguments
	exitFinding = 3 // the trace worked and the path lost probes
)

const usageText = `cnitrace finds where between a pod and its peer the latency or loss is.

Usage:
  cnitrace trace --netns PATH | --pid PID  --to IP [flags]         probe and print the hop breakdown
  cnitrace path  --netns PATH | --pid PID  --to IP [flags]         print the capture points only
  cnitrace lab up [--name NAME] [--topology T] [extras] [faults]   build the two-node netns lab and leave it
  cnitrace lab fault [NAME] faults | --clear                       change the faults of a standing lab
  cnitrace lab down [NAME]                                         remove a lab
  cnitrace lab list                                                list standing labs
  cnitrace lab demo [trace flags] [--topology T] [faults]          build the lab, trace across it, remove it

Topologies: --topology flannel (bridge, the default) | routed (Calico-style proxy-ARP veths, no bridge)
Extras: --service (a ClusterIP DNATed to node 2's pod)  --external (a host behind MASQUERADE)
Faults: --delay network=2ms  --loss forward-request=0.2  --loss pod-request=0.3  --loss network=5%  --bloat 20000
(see 'cnitrace lab up --help' and docs/lab.md)

Run 'cnitrace COMMAND --help' for the flags of a command.
`

// usageError is a mistake in what the user typed; it exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// errFinding marks a run that worked but whose report shows a problem.
var errFinding = errors.New("the path lost probes")

// run is the whole program; main only adds signals and os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	return exitCode(err, stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	if strings.HasPrefix(cmd, "-") && cmd != "-h" && cmd != "--help" && cmd != "-help" {
		cmd, rest = "trace", args // trace is the default command
	}
	switch cmd {
	case "trace":
		return traceCommand(ctx, rest, stdout, stderr)
	case "path":
		return pathCommand(rest, stdout, stderr)
	case "lab":
		return labCommand(ctx, rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return usagef("unknown command %q (want trace, path or lab; see 'cnitrace help')", cmd)
}

// exitCode prints err as one line (plus a hint when one helps) and maps it
// to the exit code.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errFinding):
		return exitFinding
	}
	fmt.Fprintf(stderr, "cnitrace: error: %v\n", err)
	if h := hint(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

func hint(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, os.ErrPermission) || strings.Contains(msg, "(needs CAP_"):
		return "run as root, or on Kubernetes: kubectl debug node/<node> --profile=sysadmin -it --image=<image with cnitrace> -- cnitrace ..."
	case strings.Contains(msg, "net.ipv4.ip_forward"):
		return "check 'sysctl net.ipv4.ip_forward' in the node netns, and that --node-netns names the node the pod runs on"
	case errors.Is(err, topology.ErrUnsupportedLayout):
		return "docs/known-issues.md lists the layouts cnitrace cannot trace yet; trace to another target on the same path (a Service's endpoint pod, a pod on another node) meanwhile"
	}
	return ""
}

// newFlagSet returns a flag set that reports errors through usageError
// instead of printing and exiting. The flag package calls Usage on every
// parse error, so Usage stays silent; parseFlags prints help for --help only.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printUsage writes the synopsis and flags of fs to w.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: cnitrace %s %s\n\nFlags:\n", fs.Name(), synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseFlags parses args, turning flag errors into usage errors; --help
// prints the usage to stdout.
func parseFlags(fs *flag.FlagSet, args []string, synopsis string, stdout io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, fs, synopsis)
		return err
	}
	if err != nil {
		return usagef("%s: %v (see 'cnitrace %s --help')", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q (see 'cnitrace %s --help')", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}
