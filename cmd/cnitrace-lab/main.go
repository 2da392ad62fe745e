// Command cnitrace-lab builds, breaks and removes the emulated two-node
// cluster (network namespaces, see docs/lab.md) that cnitrace is tried and
// tested on, and runs the demo: it builds a lab and runs the cnitrace
// binary across it, as a user would.
//
// It is a command of its own so that the cnitrace binary an SRE copies onto
// a node carries no lab code: nothing there execs iptables or nsenter, or
// spawns a background delay line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// program is how messages name this command.
const program = "cnitrace-lab"

const usageText = `cnitrace-lab builds the two-node network-namespace lab that cnitrace is tried on.

Usage:
  cnitrace-lab up [--name NAME] [--layout L] [extras] [faults]     build a lab and leave it standing
  cnitrace-lab fault [NAME] faults | --clear                       change the faults of a standing lab
  cnitrace-lab down [NAME]                                         remove a lab
  cnitrace-lab list                                                list standing labs
  cnitrace-lab demo [trace flags] [--layout L] [faults]            build a lab, run cnitrace trace across it, remove it

Layouts: --layout flannel (bridge, the default) | routed (Calico-style proxy-ARP veths, no bridge)
Extras: --service (a ClusterIP as kube-proxy builds it: TCP and UDP to two serving pods)  --service-mode iptables|nftables
        --backends (every pod serves TCP 8080 and DNS)  --external (a host behind MASQUERADE)
Faults: --delay network=2ms  --loss forward-request=0.2  --loss pod-request=0.3  --loss network=5%  --bloat 20000  --deny icmp
(see 'cnitrace-lab up --help' and docs/lab.md)

Run 'cnitrace-lab COMMAND --help' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; main only adds signals and os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var exit *traceExit
	if errors.As(err, &exit) {
		return exit.code // cnitrace has said why on stderr
	}
	return cli.Report(program, err, "", stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return cli.Usagef("no command given")
	}
	switch args[0] {
	case "up":
		return labUp(ctx, args[1:], stdout, stderr)
	case "down":
		return labDown(args[1:], stdout)
	case "list":
		return labList(stdout)
	case "fault":
		return labFault(ctx, args[1:], stdout, stderr)
	case "demo":
		return labDemo(ctx, args[1:], stdout, stderr)
	case "wire": // hidden: the background delay line that up and fault start
		return labWire(ctx, args[1:], stdout, stderr)
	case "backends": // hidden: the background TCP servers of the pods that up starts
		return labBackends(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return cli.Usagef("unknown command %q (want up, down, list, fault or demo; see 'cnitrace-lab help')", args[0])
}

func labError(err error) error {
	if errors.Is(err, lab.ErrNoLab) {
		return cli.Usagef("%v (see 'cnitrace-lab list')", err)
	}
	return err
}
