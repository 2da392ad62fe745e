package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
)

// reportCommand renders a saved JSON report again, in any format: what
// the run printed, byte for byte (report.DecodeAll: one report, or the
// array of merge's reports of a run that reached several listeners' pods,
// rendered as merge renders them). FILE "-" is stdin. The
// output is --out's, opened first as trace opens it, so a path that
// cannot be written is found before anything is read; it is completed only
// once the whole report is rendered. It exits 0 whatever the report found:
// the finding was the run's.
func reportCommand(args []string, stdin io.Reader, stdout io.Writer) error {
	var format, outPath string
	const synopsis = "FILE.json [--format text|json|markdown|html] [--out FILE]"
	fs := cli.NewFlagSet("report")
	fs.StringVar(&format, "format", "text", "report `format`: text, json, markdown or html")
	fs.StringVar(&outPath, "out", "", "write the report to `file` instead of stdout")
	files, flags := fileArgs(fs, args)
	if err := cli.ParseFlags(program, fs, flags, synopsis, stdout); err != nil {
		return err
	}
	switch {
	case len(files) == 0:
		return cli.Usagef("report: say which report to render: cnitrace report FILE.json, a report saved with 'cnitrace trace --format json --out FILE.json' ('-' reads stdin)")
	case len(files) > 1:
		return cli.Usagef("report: unexpected argument %q (see '%s report --help'): it renders one file", files[1], program)
	}
	file := files[0]
	f, err := report.ParseFormat(format)
	if err != nil {
		return cli.Usagef("--format: %v", err)
	}
	out, err := openOutput("--out", outPath, stdout)
	if err != nil {
		return err
	}
	defer out.Abort() // does nothing once committed
	rs, err := readReports(file, stdin)
	if err != nil {
		return err
	}
	if err := onePage(rs, f, inputName(file)+" holds", "render one (jq '.[0]' FILE > one.json)"); err != nil {
		return err
	}
	if err := renderReports(out, rs, f); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("write the report to %s: %w", out.Name(), err)
	}
	return nil
}

// readReports decodes the saved report in file, or stdin for "-": one, or
// the array merge writes of a run that reached several listeners. A file
// that cannot be read, is no report or is of another schema is a usage
// error naming the file and what to do.
func readReports(file string, stdin io.Reader) (rs []*report.Result, err error) {
	err = readInput(reportInput, file, stdin, func(in io.Reader) (err error) {
		rs, err = report.DecodeAll(in)
		return err
	})
	return rs, err
}

// reportInput is what report reads.
var reportInput = inputKind{
	cmd:       "report",
	verb:      "render",
	give:      "give a report saved with 'cnitrace trace --format json --out FILE.json'",
	notReport: "give a report saved with 'cnitrace trace --format json'; a text or Markdown report cannot be read back",
}

// inputKind is what a command reads from its files, for readInput's
// errors: the command, the verb of the schema advice, and what to give
// instead of a file that cannot be read or is no report.
type inputKind struct {
	cmd, verb       string
	give, notReport string
}

// readInput opens file, or takes stdin for "-", and decodes it with
// decode. A file that cannot be opened or read, is no report or is of
// another version is a usage error naming it and what to do; a failure
// to read stdin is returned wrapped.
func readInput(k inputKind, file string, stdin io.Reader, decode func(io.Reader) error) error {
	in, name := stdin, inputName(file)
	if file != "-" {
		f, err := os.Open(file)
		var pe *os.PathError
		if errors.As(err, &pe) {
			return cli.Usagef("%s %s: %v (check the path; %s)", k.cmd, file, pe.Err, k.give)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", k.cmd, file, err)
		}
		defer f.Close()
		in = f
	}
	err := decode(in)
	var se *report.SchemaError
	var pe *os.PathError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return cli.Usagef("%s %s: %v (%s)", k.cmd, name, err, schemaAdvice(se, k.verb))
	case errors.As(err, &pe): // the file cannot be read: a directory, say
		return cli.Usagef("%s %s: %v (%s)", k.cmd, name, pe.Err, k.give)
	case errors.Is(err, report.ErrNotReport):
		return cli.Usagef("%s %s: %v (%s)", k.cmd, name, err, k.notReport)
	}
	return fmt.Errorf("%s %s: %w", k.cmd, name, err) // reading stdin failed
}

// inputName is how messages name file: "stdin" for "-".
func inputName(file string) string {
	if file == "-" {
		return "stdin"
	}
	return file
}

// schemaAdvice says what to do with a record of another schema_version or
// stamps_version, which verb ("render", "merge") would have read.
func schemaAdvice(se *report.SchemaError, verb string) string {
	if se.Newer() {
		return verb + " it with the cnitrace that wrote it, or a later one"
	}
	field := "schema_version"
	if se.Record != "" {
		field = "stamps_version"
	}
	return "cnitrace never wrote this " + field + ": the file was made or changed by something else"
}

// takesValue reports whether arg is a flag of fs given without "=" whose
// value is the next argument: any but a boolean flag.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}
