package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
)

// mergeCommand merges the source node's report (trace --for-merge
// --format json) with the listen files of the target nodes into one
// report per target node (report.Merge), rendered in any format. The
// files may come in any order; the output is --out's, opened before
// anything is read, as report's. It exits 0 whatever the report found:
// the finding was the run's.
func mergeCommand(args []string, stdout io.Writer) error {
	var format, outPath string
	const synopsis = "SOURCE.json LISTEN.json... [--format text|json|markdown|html] [--out FILE]"
	fs := cli.NewFlagSet("merge")
	fs.StringVar(&format, "format", "text", "report `format`: text, json, markdown or html")
	fs.StringVar(&outPath, "out", "", "write the merged report to `file` instead of stdout")
	files, flags := fileArgs(fs, args)
	if err := cli.ParseFlags(program, fs, flags, synopsis, stdout); err != nil {
		return err
	}
	if len(files) < 2 {
		return cli.Usagef("merge: give the source node's report and at least one listen file: cnitrace merge SOURCE.json LISTEN.json... (docs/two-nodes.md)")
	}
	f, err := report.ParseFormat(format)
	if err != nil {
		return cli.Usagef("--format: %v", err)
	}
	out, err := openOutput("--out", outPath, stdout)
	if err != nil {
		return err
	}
	defer out.Abort() // does nothing once committed
	src, listeners, err := readMergeInputs(files)
	if err != nil {
		return err
	}
	merged, err := report.Merge(src, listeners...)
	if errors.Is(err, report.ErrNotMergeable) {
		return cli.Usagef("merge: %v", err)
	}
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if len(merged) > 1 && f == report.FormatHTML {
		return cli.Usagef("--format html: the run's probes went to %d listeners' pods (%s), a report each, and an HTML report is one page: give merge one listen file at a time for a page per pod (the others' probes are then counted as without a listener, not lost), or use text, markdown or json", len(merged), targetList(merged))
	}
	if err := renderReports(out, merged, f); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	return nil
}

// readMergeInputs reads every file: exactly one report traced with
// --for-merge, the others listen files. What is wrong with a file is a
// usage error naming it.
func readMergeInputs(files []string) (*report.Result, []*report.Stamps, error) {
	var src *report.Result
	var srcFile string
	var listeners []*report.Stamps
	for _, file := range files {
		r, s, err := readMergeInput(file)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case s != nil:
			listeners = append(listeners, s)
		case r.Stamps == nil:
			return nil, nil, cli.Usagef("merge %s: a report without stamps: trace with --for-merge --format json --out FILE.json for merge", file)
		case src != nil:
			return nil, nil, cli.Usagef("merge %s and %s: two source reports; give one, and the target nodes' listen files", srcFile, file)
		default:
			src, srcFile = r, file
		}
	}
	switch {
	case src == nil:
		return nil, nil, cli.Usagef("merge: no source report among %s: give the report of 'cnitrace trace --for-merge --format json --out FILE.json'", strings.Join(files, " "))
	case len(listeners) == 0:
		return nil, nil, cli.Usagef("merge: no listen file: give the target node's 'cnitrace listen --out FILE.json' with %s", srcFile)
	}
	return src, listeners, nil
}

// readMergeInput reads one file as report.DecodeMergeInput does.
func readMergeInput(file string) (*report.Result, *report.Stamps, error) {
	data, err := os.ReadFile(file)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return nil, nil, cli.Usagef("merge %s: %v (check the path)", file, pe.Err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("merge %s: %w", file, err)
	}
	r, s, err := report.DecodeMergeInput(bytes.NewReader(data))
	var se *report.SchemaError
	switch {
	case err == nil:
		return r, s, nil
	case errors.As(err, &se):
		return nil, nil, cli.Usagef("merge %s: %v (%s)", file, err, schemaAdvice(se, "merge"))
	case errors.Is(err, report.ErrNotReport):
		return nil, nil, cli.Usagef("merge %s: %v (give a 'trace --for-merge --format json' report or a 'listen' file)", file, err)
	}
	return nil, nil, fmt.Errorf("merge %s: %w", file, err)
}

// renderReports writes the reports, as merge and report do: one as Render does; several
// (a Service's backends, a listener each) one after the other, as a JSON
// array in JSON. HTML is one page per report: the caller refuses several.
func renderReports(w io.Writer, merged []*report.Result, f report.Format) error {
	if len(merged) == 1 {
		return report.Render(w, merged[0], f)
	}
	var b bytes.Buffer
	if f == report.FormatJSON {
		b.WriteString("[\n")
	}
	for i, r := range merged {
		switch {
		case i > 0 && f == report.FormatJSON:
			b.WriteString(",\n")
		case i > 0:
			b.WriteString("\n")
		}
		if err := report.Render(&b, r, f); err != nil {
			return err
		}
	}
	if f == report.FormatJSON {
		b.WriteString("]\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// fileArgs takes merge's files out of args, before, between or after the
// flags, and returns the flags left.
func fileArgs(fs *flag.FlagSet, args []string) (files, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(files, args[i+1:]...), flags
		case !strings.HasPrefix(a, "-") || a == "-":
			files = append(files, a)
		case takesValue(fs, a) && i+1 < len(args):
			flags = append(flags, a, args[i+1])
			i++
		default:
			flags = append(flags, a)
		}
	}
	return files, flags
}

// targetList names the pods of merged reports, with their node IDs.
func targetList(merged []*report.Result) string {
	var s []string
	for i, r := range merged {
		if r.Merge == nil || len(r.Merge.Nodes) < 2 { // an array cnitrace report was given, not of merge's making
			s = append(s, fmt.Sprintf("report %d: no merge", i+1))
			continue
		}
		n := r.Merge.Nodes[1]
		s = append(s, n.Pod+" ("+n.ID+")")
	}
	return strings.Join(s, ", ")
}
