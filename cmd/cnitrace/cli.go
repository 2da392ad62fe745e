package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology"
)

// program is how messages name this command.
const program = "cnitrace"

const usageText = `cnitrace finds where between a pod and its peer the latency or loss is.

Usage:
  cnitrace trace --pod [NS/]NAME | --netns PATH | --pid PID  --to IP [flags]   probe and print the hop breakdown
  cnitrace path  --pod [NS/]NAME | --netns PATH | --pid PID  --to IP [flags]   print the capture points only
  cnitrace report FILE.json [--format text|json|markdown|html] [--out FILE]    print a saved JSON report again, in any format
  cnitrace listen --pod [NS/]NAME | --netns PATH | --pid PID  --from IP [--duration D] [--out FILE]
                                                                                capture on the target pod's node every probe toward it
  cnitrace merge SOURCE.json LISTEN.json... [--format ...] [--out FILE]         one report across both nodes (docs/two-nodes.md)

The two-node netns lab to try it on is a command of its own: cnitrace-lab
(make build puts it next to cnitrace; see docs/lab.md).

Run 'cnitrace COMMAND --help' for the flags of a command.
`

// errFinding marks a run that worked but whose report shows a problem.
var errFinding = errors.New("the path lost probes")

// run is the whole program; main only adds signals and os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, errFinding) {
		return cli.ExitFinding
	}
	return cli.Report(program, err, hint(err), stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return cli.Usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	if len(cmd) > 0 && cmd[0] == '-' && cmd != "-h" && cmd != "--help" && cmd != "-help" {
		cmd, rest = "trace", args // trace is the default command
	}
	switch cmd {
	case "trace":
		return traceCommand(ctx, rest, stdout, stderr)
	case "path":
		return pathCommand(ctx, rest, stdout, stderr)
	case "report":
		return reportCommand(rest, os.Stdin, stdout)
	case "listen":
		return listenCommand(ctx, rest, stdout, stderr)
	case "merge":
		return mergeCommand(rest, os.Stdin, stdout)
	case "lab":
		return cli.Usagef("lab: the lab is a command of its own now: run 'cnitrace-lab %s' (make build puts it next to cnitrace)", labArgs(rest))
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return cli.Usagef("unknown command %q (want trace, path, report, listen or merge; see 'cnitrace help')", cmd)
}

// labArgs is what to pass to cnitrace-lab for 'cnitrace lab args...'.
func labArgs(args []string) string {
	if len(args) == 0 {
		return "up|fault|down|list|demo"
	}
	s := args[0]
	for _, a := range args[1:] {
		s += " " + a
	}
	return s
}

// setcapAll grants a copy of the binary every capability a cnitrace
// command uses (docs/privileges.md), so that a normal user can run it.
const setcapAll = "setcap cap_net_raw,cap_net_admin,cap_sys_admin,cap_sys_ptrace+ep ./cnitrace"

// hint returns the line that tells the user what to do about err, or ""
// when no remedy is known. It branches on error types, never on text.
//
// A missing capability is named with the three ways to grant it. None of
// them is "run as root": root in a container often lacks capabilities, and
// a root whose bounding set lacks one cannot get it back by setcap either.
func hint(err error) string {
	var capErr *topology.CapabilityError
	var noRoute *noICMPRouteError
	switch {
	case errors.As(err, &noRoute):
		return "the node has no route to " + noRoute.target.String() + ": if it is a Service address, Services do not carry ICMP: trace with --proto tcp --port PORT or --proto udp --port PORT"
	case errors.As(err, &capErr):
		c := capErr.Capability
		short := strings.TrimPrefix(c, "CAP_") // how docker and Kubernetes spell it
		return fmt.Sprintf("cnitrace needs %s (docs/privileges.md): in a container, add it (--cap-add %s, or securityContext.capabilities.add: [%s]); "+
			"for a normal user, run '%s' on a copy of the binary; on Kubernetes, 'kubectl debug node/<node> --profile=sysadmin' has it",
			c, short, short, setcapAll)
	case errors.Is(err, topology.ErrNoForwardRoute):
		return "the node netns does not forward: check the sysctl named above there ('sysctl -w ...=1' if it is really off), and that --node-netns names the node the pod runs on"
	case errors.Is(err, topology.ErrUnsupportedLayout):
		return "docs/known-issues.md lists the layouts cnitrace cannot trace yet; trace to another target on the same path (a Service's endpoint pod, a pod on another node) meanwhile"
	}
	return runtimeHint(err)
}
