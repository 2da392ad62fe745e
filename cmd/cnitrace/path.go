package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
)

func pathCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c traceConfig
	var to, format string
	var asJSON bool
	const synopsis = "--pod [NAMESPACE/]NAME | --netns FILE | --pid PID --to IP [--proto tcp|udp --port N] [--format text|json|markdown|html]"
	fs := cli.NewFlagSet("path")
	addSourceFlags(fs, &c, traceSource)
	fs.StringVar(&to, "to", "", toUsage)
	addProtoFlags(fs, &c)
	fs.StringVar(&format, "format", "text", "path `format`: text, json, markdown or html")
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
	var src report.Source // the pod --pod found, if any
	c.nameSource(&src)
	return report.RenderPath(stdout, path, src, f)
}

// pathFormat returns the format path prints in: --format, the one
// spelling every command shares, or the deprecated --json, which says so
// on stderr (it goes in the release after the one that deprecated it).
func pathFormat(fs *flag.FlagSet, format string, asJSON bool, stderr io.Writer) (report.Format, error) {
	f, err := report.ParseFormat(format)
	if err != nil {
		return 0, cli.Usagef("--format: %v", err)
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
