package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cnitrace/cnitrace/topology/lab"
)

func labCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("lab: say up, down, list or demo (see 'cnitrace help')")
	}
	switch args[0] {
	case "up":
		return labUp(ctx, args[1:], stdout, stderr)
	case "down":
		return labDown(args[1:], stdout)
	case "list":
		return labList(stdout)
	case "demo":
		return labDemo(ctx, args[1:], stdout, stderr)
	}
	return usagef("lab: unknown subcommand %q (want up, down, list or demo)", args[0])
}

func labUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var name string
	const synopsis = "[--name NAME]"
	fs := newFlagSet("lab up")
	fs.StringVar(&name, "name", "", "lab `name` (default: cnitrace-<random>); [a-z0-9-], at most 24 characters")
	if err := parseFlags(fs, args, synopsis, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "cnitrace: building the two-node lab...")
	l, err := lab.Up(ctx, lab.Config{Name: name})
	if err != nil {
		return labError(err)
	}
	// The namespaces stay pinned in /run/netns; our handles close at exit.
	n1, n2 := l.Nodes[0], l.Nodes[1]
	fmt.Fprintf(stdout, "lab %s is up: pod %s on node 1, pod %s on node 2\n", l.Name, n1.Pod.Addr, n2.Pod.Addr)
	fmt.Fprintf(stdout, "trace across it:\n  cnitrace trace %s\n", strings.Join(labTraceArgs(l), " "))
	fmt.Fprintf(stdout, "remove it:\n  cnitrace lab down %s\n", l.Name)
	return nil
}

// labTraceArgs are the trace flags that probe from pod 1 to pod 2 of l.
func labTraceArgs(l *lab.Lab) []string {
	n1, n2 := l.Nodes[0], l.Nodes[1]
	return []string{"--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", n2.Pod.Addr.String()}
}

func labDown(args []string, stdout io.Writer) error {
	if len(args) > 1 {
		return usagef("lab down: give at most one lab name")
	}
	names, err := lab.List()
	if err != nil {
		return err
	}
	if len(args) == 0 {
		switch len(names) {
		case 0:
			return usagef("lab down: no lab is standing")
		case 1:
			args = names
		default:
			return usagef("lab down: %d labs are standing (%s): name the one to remove", len(names), strings.Join(names, ", "))
		}
	}
	if err := lab.Down(args[0]); err != nil {
		return labError(err)
	}
	fmt.Fprintf(stdout, "lab %s removed\n", args[0])
	return nil
}

func labList(stdout io.Writer) error {
	names, err := lab.List()
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return nil
}

// labDemo builds a lab, traces from pod 1 to pod 2 with the given trace
// flags (defaults suit a demo), prints the report and removes the lab.
func labDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c traceConfig
	var format string
	const synopsis = "[--count N] [--interval D] [--format F] ..."
	fs := newFlagSet("lab demo")
	addProbeFlags(fs, &c, &format)
	if err := parseFlags(fs, args, synopsis, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "cnitrace: building the two-node lab...")
	l, err := lab.Up(ctx, lab.Config{})
	if err != nil {
		return labError(err)
	}
	defer l.Close()
	c.netns, c.nodeNetns = l.Nodes[0].Pod.NSPath, l.Nodes[0].NSPath
	if err := c.validate(l.Nodes[1].Pod.Addr.String(), format); err != nil {
		return err
	}
	if err := c.probeConfig().Validate(); err != nil {
		return usagef("--%v", err) // probe names its fields as the flags are named
	}
	fmt.Fprintf(stderr, "cnitrace: lab %s is up; tracing pod %s -> pod %s\n", l.Name, l.Nodes[0].Pod.Addr, c.to)
	return trace(ctx, &c, stdout, stderr)
}

func labError(err error) error {
	if errors.Is(err, lab.ErrNoLab) {
		return usagef("%v (see 'cnitrace lab list')", err)
	}
	return err
}
