package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology"
)

func pathCommand(args []string, stdout, stderr io.Writer) error {
	var c traceConfig
	var to string
	var asJSON bool
	const synopsis = "--netns FILE | --pid PID --to IP [--json]"
	fs := cli.NewFlagSet("path")
	addSourceFlags(fs, &c, &to)
	fs.BoolVar(&asJSON, "json", false, "print the path as JSON")
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := c.validate(to, ""); err != nil {
		return err
	}
	pod, node, path, err := c.resolve()
	if err != nil {
		return err
	}
	pod.Close()
	node.Close()
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(path)
	}
	return printPath(stdout, path)
}

func printPath(w io.Writer, path *topology.Path) error {
	fmt.Fprintf(w, "path to %s from %s@%s (%s), request direction:\n", path.Target, path.Source.Interface, path.Source.NetNS, path.Source.Addr)
	if path.Translated.IsValid() {
		fmt.Fprintf(w, "(the node translates %s to %s: DNAT, found in its conntrack table)\n", path.Target, path.Translated)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINTERFACE\tNETNS\tIFINDEX\tKIND\tREQUEST")
	for _, p := range path.Points {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", p.ID, p.Interface, p.NetNS, p.Ifindex, p.Kind, p.RequestDir)
	}
	return tw.Flush()
}
