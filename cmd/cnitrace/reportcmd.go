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
	file, flags := fileArg(fs, args)
	if err := cli.ParseFlags(program, fs, flags, synopsis, stdout); err != nil {
		return err
	}
	if file == "" {
		return cli.Usagef("report: say which report to render: cnitrace report FILE.json, a report saved with 'cnitrace trace --format json --out FILE.json' ('-' reads stdin)")
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
	rs, err := readReports(file, stdin)
	if err != nil {
		return err
	}
	if len(rs) > 1 && f == report.FormatHTML {
		src := file
		if file == "-" {
			src = "stdin"
		}
		return cli.Usagef("--format html: %s holds %d reports, one per listener's pod (%s), and an HTML report is one page: render one (jq '.[0]' FILE > one.json), or use text, markdown or json", src, len(rs), targetList(rs))
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
func readReports(file string, stdin io.Reader) ([]*report.Result, error) {
	in, name := stdin, "stdin"
	if file != "-" {
		f, err := os.Open(file)
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, cli.Usagef("report %s: %v (check the path; give a report saved with 'cnitrace trace --format json --out FILE.json')", file, pe.Err)
		}
		if err != nil {
			return nil, fmt.Errorf("report %s: %w", file, err)
		}
		defer f.Close()
		in, name = f, file
	}
	rs, err := report.DecodeAll(in)
	var se *report.SchemaError
	var pe *os.PathError
	switch {
	case err == nil:
		return rs, nil
	case errors.As(err, &se):
		return nil, cli.Usagef("report %s: %v (%s)", name, err, schemaAdvice(se, "render"))
	case errors.As(err, &pe): // the file cannot be read: a directory, say
		return nil, cli.Usagef("report %s: %v (give a report saved with 'cnitrace trace --format json --out FILE.json')", name, pe.Err)
	case errors.Is(err, report.ErrNotReport):
		return nil, cli.Usagef("report %s: %v (give a report saved with 'cnitrace trace --format json'; a text or Markdown report cannot be read back)", name, err)
	}
	return nil, fmt.Errorf("report %s: %w", name, err) // reading stdin failed
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

// fileArg takes the report's FILE out of args, before, between or after
// the flags, and returns the flags left; "" when there is none. A second
// argument stays in flags, for ParseFlags to refuse.
func fileArg(fs *flag.FlagSet, args []string) (file string, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return args[i+1], append(args[:i:i], args[i+2:]...)
			}
			return "", args[:i]
		case a == "-" || !strings.HasPrefix(a, "-"):
			return a, append(args[:i:i], args[i+1:]...)
		case takesValue(fs, a):
			i++ // the flag's value, as the next argument
		}
	}
	return "", args
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
