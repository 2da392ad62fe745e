package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
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
func mergeCommand(args []string, stdin io.Reader, stdout io.Writer) error {
	var format, outPath string
	const synopsis = "SOURCE.json LISTEN.json... [--format text|json|markdown|html] [--out FILE]"
	fs := cli.NewFlagSet("merge")
	fs.StringVar(&format, "format", "text", "report `format`: text, json, markdown or html")
	fs.StringVar(&outPath, "out", "", "write the merged report to `file` instead of stdout")
	files, flags := fileArgs(fs, args)
	if err := cli.ParseFlags(program, fs, flags, synopsis, stdout); err != nil {
		return err
	}
	switch {
	case len(files) < 2:
		return cli.Usagef("merge: give the source node's report and at least one listen file: cnitrace merge SOURCE.json LISTEN.json... (docs/two-nodes.md)")
	case countOf(files, "-") > 1:
		return cli.Usagef("merge: - given twice: stdin holds one file; name the others")
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
	src, listeners, err := readMergeInputs(files, stdin)
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
	if err := onePage(merged, f, "the run's probes make", "give merge one listen file at a time for a page per pod (the others' probes are then counted as without a listener, not lost)"); err != nil {
		return err
	}
	if err := renderReports(out, merged, f); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	return nil
}

// readMergeInputs reads every file ("-": stdin): exactly one report
// traced with --for-merge, the others listen files. What is wrong with a
// file is a usage error naming it.
func readMergeInputs(files []string, stdin io.Reader) (*report.Result, []*report.Stamps, error) {
	var src *report.Result
	var srcFile string
	var listeners []*report.Stamps
	for _, file := range files {
		var r *report.Result
		var s *report.Stamps
		err := readInput(mergeInput, file, stdin, func(in io.Reader) (err error) {
			r, s, err = report.DecodeMergeInput(in)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		switch {
		case s != nil:
			listeners = append(listeners, s)
		case r.Stamps == nil:
			return nil, nil, cli.Usagef("merge %s: a report without stamps: trace with --for-merge --format json --out FILE.json for merge", inputName(file))
		case src != nil:
			return nil, nil, cli.Usagef("merge %s and %s: two source reports; give one, and the target nodes' listen files", inputName(srcFile), inputName(file))
		default:
			src, srcFile = r, file
		}
	}
	switch {
	case src == nil:
		return nil, nil, cli.Usagef("merge: no source report among %s: give the report of 'cnitrace trace --for-merge --format json --out FILE.json'", strings.Join(files, " "))
	case len(listeners) == 0:
		return nil, nil, cli.Usagef("merge: no listen file: give the target node's 'cnitrace listen --out FILE.json' with %s", inputName(srcFile))
	}
	return src, listeners, nil
}

// mergeInput is what merge reads.
var mergeInput = inputKind{
	cmd:       "merge",
	verb:      "merge",
	give:      "give a 'trace --for-merge --format json' report or a 'listen' file",
	notReport: "give a 'trace --for-merge --format json' report or a 'listen' file",
}

// countOf counts s in ss.
func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// onePage refuses --format html for several reports before anything is
// written: an HTML report is one page. from says where the reports come
// from, instead what to do for a page.
func onePage(rs []*report.Result, f report.Format, from, instead string) error {
	if len(rs) < 2 || f != report.FormatHTML {
		return nil
	}
	return cli.Usagef("--format html: %s %d reports, one per listener's pod (%s), and an HTML report is one page: %s, or use text, markdown or json", from, len(rs), targetList(rs), instead)
}

// renderReports writes the reports, as merge and report do: one as Render does; several
// (a Service's backends, a listener each) one after the other, as a JSON
// array in JSON. HTML is one page per report: the caller refuses several
// (onePage).
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

// fileArgs takes merge's and report's files out of args, before, between
// or after the flags, and returns the flags left.
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
