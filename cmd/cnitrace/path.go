package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

func pathCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c traceConfig
	var to, format string
	var asJSON bool
	const synopsis = "--pod [NAMESPACE/]NAME | --netns FILE | --pid PID --to IP [--format text|json]"
	fs := cli.NewFlagSet("path")
	addSourceFlags(fs, &c, &to)
	fs.StringVar(&format, "format", "text", "path `format`: text or json")
	fs.BoolVar(&asJSON, "json", false, "deprecated: use --format json")
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := c.validate(to, ""); err != nil {
		return err
	}
	f, err := pathFormat(fs, format, asJSON, stderr)
	if err != nil {
		return err
	}
	pod, node, path, err := c.resolve(ctx, stderr)
	if err != nil {
		return err
	}
	pod.Close()
	node.Close()
	var src report.Source
	c.nameSource(&src)
	if f == report.FormatJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(pathJSON(path, src))
	}
	return printPath(stdout, path, src)
}

// podPath is the path's JSON with the pod --pod found added to its
// source, as the trace report names it (source.pod, .sandbox_id,
// .host_network): the outer source hides the embedded path's.
type podPath struct {
	*topology.Path
	Source struct {
		topology.Source
		Pod         string `json:"pod"`
		SandboxID   string `json:"sandbox_id"`
		HostNetwork bool   `json:"host_network,omitempty"`
	} `json:"source"`
}

// pathJSON is what path --format json encodes: the topology.Path as it
// is, or, for --pod, with the pod in its source.
func pathJSON(path *topology.Path, src report.Source) any {
	if src.Pod == "" {
		return path
	}
	p := podPath{Path: path}
	p.Source.Source = path.Source
	p.Source.Pod, p.Source.SandboxID, p.Source.HostNetwork = src.Pod, src.SandboxID, src.HostNetwork
	return p
}

// pathFormat returns the format path prints in: --format, the one
// spelling every command shares, or the deprecated --json, which says so
// on stderr (it goes in the release after the one that deprecated it).
func pathFormat(fs *flag.FlagSet, format string, asJSON bool, stderr io.Writer) (report.Format, error) {
	f, err := report.ParseFormat(format)
	if err != nil {
		return 0, cli.Usagef("--format: %v", err)
	}
	if f != report.FormatText && f != report.FormatJSON {
		return 0, cli.Usagef("--format %s: path prints text or json", format)
	}
	if !asJSON {
		return f, nil
	}
	if formatSet(fs) && f != report.FormatJSON {
		return 0, cli.Usagef("--json and --format %s: use --format alone", format)
	}
	fmt.Fprintln(stderr, "cnitrace: warning: path --json is deprecated and goes in the next release: use --format json")
	return report.FormatJSON, nil
}

// formatSet reports whether --format was given on the command line.
func formatSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "format" })
	return set
}

// printPath prints the points as a table under a line naming the source:
// src's pod first, when --pod found one.
func printPath(w io.Writer, path *topology.Path, src report.Source) error {
	from := fmt.Sprintf("%s@%s (%s)", path.Source.Interface, path.Source.NetNS, path.Source.Addr)
	if src.Pod != "" {
		from = podName(src) + " " + from
	}
	fmt.Fprintf(w, "path to %s from %s, request direction:\n", path.Target, from)
	if path.Translated.IsValid() {
		fmt.Fprintf(w, "(the node translates %s to %s: DNAT, found in its conntrack table)\n", path.Target, path.Translated)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINTERFACE\tNETNS\tIFINDEX\tKIND\tREQUEST")
	for _, p := range path.Points {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", p.ID, p.Interface, p.NetNS, p.Ifindex, p.Kind, p.RequestDir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := len(path.Points); n > 0 {
		turn := path.TurnaroundOrInferred()
		fmt.Fprintf(w, "beyond %s the probes turn around in %s%s\n", path.Points[n-1].ID, turn, turnaroundWhat(turn))
	}
	return nil
}

// turnaroundWhat says, after its class, what a turnaround holds; an
// unknown class is printed as it is, with nothing after it.
func turnaroundWhat(t topology.Turnaround) string {
	switch t {
	case topology.TurnNetwork:
		return " (the wire and whatever answers beyond it)"
	case topology.TurnPeer:
		return " (another pod on this node answers)"
	case topology.TurnNode:
		return " (the node's own stack answers)"
	}
	return ""
}
