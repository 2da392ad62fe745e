package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
)

// goldenReport is the JSON report of report's golden scenario; the golden
// file of every other format is report.Render of the same Result.
const goldenReport = "../../testdata/report-flannel.golden.json"

// TestReportRendersGolden: cnitrace report prints the golden report in
// every format as report.Render printed it, byte for byte, from a file or
// stdin, to stdout or --out, the flags before or after FILE.
func TestReportRendersGolden(t *testing.T) {
	in, err := os.ReadFile(goldenReport)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range report.Formats() {
		t.Run(f.String(), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(goldenReport, ".json") + f.Ext())
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "report"+f.Ext())
			for _, args := range [][]string{
				{goldenReport, "--format", f.String()},
				{"--format=" + f.String(), goldenReport},
				{"--format", f.String(), "-"},
				{"--format", f.String(), "--out", out, goldenReport},
			} {
				var stdout bytes.Buffer
				if err := reportCommand(args, bytes.NewReader(in), &stdout); err != nil {
					t.Fatalf("report %q: %v", args, err)
				}
				got := stdout.Bytes()
				if slices.Contains(args, "--out") {
					if got, err = os.ReadFile(out); err != nil {
						t.Fatal(err)
					}
					if stdout.Len() > 0 {
						t.Errorf("report %q: got stdout %q, want nothing with --out", args, stdout.Bytes())
					}
				}
				if !bytes.Equal(got, want) {
					t.Errorf("report %q: got\n%s\nwant\n%s", args, got, want)
				}
			}
		})
	}
}

// TestReportDefaultsToText: without --format the report is text, and the
// command exits 0 though the report lost probes: the finding was the
// run's.
func TestReportDefaultsToText(t *testing.T) {
	want, err := os.ReadFile("../../testdata/report-flannel.golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "report", goldenReport)
	if code != cli.ExitOK || stdout != string(want) || stderr != "" {
		t.Errorf("got exit %d, stdout\n%s\nstderr %q; want 0, the golden text report and nothing on stderr", code, stdout, stderr)
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	golden, err := os.ReadFile(goldenReport)
	if err != nil {
		t.Fatal(err)
	}
	text := write("report.txt", "cnitrace: 30 probes to 10.244.2.2\n")
	path := write("path.json", `{"target": "10.244.2.2", "source": {}, "points": []}`)
	newer := write("newer.json", strings.Replace(string(golden), `"schema_version": 1,`, `"schema_version": 2,`, 1))
	garbage := write("garbage.json", string(golden)+"}")
	missing := filepath.Join(dir, "missing.json")
	out := filepath.Join(dir, "out.md")
	tests := []struct {
		name string
		args []string
		want []string // in the one error line
	}{
		{"no file", []string{"report"}, []string{"say which report to render", "--format json --out FILE.json"}},
		{"no file, only flags", []string{"report", "--format", "markdown"}, []string{"say which report to render"}},
		{"missing file", []string{"report", missing}, []string{"report " + missing + ": no such file or directory", "check the path"}},
		{"a directory", []string{"report", dir}, []string{"report " + dir + ": is a directory", "give a report saved with"}},
		{"a text report", []string{"report", text}, []string{"report " + text + ": not a cnitrace JSON report: invalid character", "a text or Markdown report cannot be read back"}},
		{"a path", []string{"report", path}, []string{"report " + path + ": not a cnitrace JSON report: the object has no schema_version"}},
		{"a newer schema", []string{"report", newer}, []string{"report " + newer + ": schema_version 2 (written by cnitrace v0.9.0 4f1c2ab39d07) is newer than this cnitrace reads, 1", "render it with the cnitrace that wrote it"}},
		{"trailing garbage", []string{"report", garbage, "--out", out}, []string{"report " + garbage + ": not a cnitrace JSON report: more data after the report"}},
		{"two files", []string{"report", goldenReport, text}, []string{`report: unexpected argument "` + text + `"`}},
		{"unknown format", []string{"report", goldenReport, "--format", "xml"}, []string{`--format: unknown output format "xml"`}},
		{"unknown flag", []string{"report", goldenReport, "--colour"}, []string{"report: flag provided but not defined: -colour"}},
		{"--out a directory", []string{"report", goldenReport, "--out", dir}, []string{"--out " + dir + ": is a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != cli.ExitUsage {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, cli.ExitUsage, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "cnitrace: error: ") {
				t.Errorf("got stderr %q, want exactly one 'cnitrace: error:' line", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("got stderr %q, want it to mention %q", stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a failed report left %s behind (stat: %v)", out, err)
			}
		})
	}
}

// TestReportStdinNotReport: what comes on stdin is named so in the error.
func TestReportStdinNotReport(t *testing.T) {
	err := reportCommand([]string{"-"}, strings.NewReader("not json"), io.Discard)
	if !cli.IsUsage(err) || !strings.Contains(err.Error(), "report stdin: not a cnitrace JSON report") {
		t.Errorf("got %v, want a usage error naming stdin", err)
	}
}

func TestReportHelp(t *testing.T) {
	code, stdout, stderr := runCLI(t, "report", "--help")
	if code != cli.ExitOK || stderr != "" {
		t.Errorf("got exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	for _, want := range []string{"Usage: cnitrace report FILE.json [--format text|json|markdown|html] [--out FILE]", "-format", "-out"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("got help\n%s\nwant it to contain %q", stdout, want)
		}
	}
	if _, usage, _ := runCLI(t, "help"); !strings.Contains(usage, "cnitrace report FILE.json") {
		t.Errorf("got usage\n%s\nwant it to list the report command", usage)
	}
}

// TestReportRendersMergedArray: the JSON array merge writes for a run that
// reached several listeners' pods renders again as merge rendered it, in
// text, Markdown and JSON, byte for byte; HTML, one page, is refused with
// a usage error naming the pods, and so are an empty array and an array
// holding something that is no report.
func TestReportRendersMergedArray(t *testing.T) {
	code, one, stderr := runCLI(t, "merge", "--format", "json", mergeTrace, mergeListen)
	if code != 0 {
		t.Fatalf("merge: exit %d; stderr:\n%s", code, stderr)
	}
	r, err := report.Decode(strings.NewReader(one))
	if err != nil {
		t.Fatal(err)
	}
	two := []*report.Result{r, r}
	var arr bytes.Buffer
	if err := renderReports(&arr, two, report.FormatJSON); err != nil {
		t.Fatal(err)
	}
	for _, f := range []report.Format{report.FormatText, report.FormatMarkdown, report.FormatJSON} {
		var want, got bytes.Buffer
		if err := renderReports(&want, two, f); err != nil {
			t.Fatal(err)
		}
		if err := reportCommand([]string{"--format", f.String(), "-"}, bytes.NewReader(arr.Bytes()), &got); err != nil {
			t.Fatalf("report --format %s of the array: %v", f, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("report --format %s of the array: got\n%s\nwant\n%s", f, got.Bytes(), want.Bytes())
		}
		if f == report.FormatText && strings.Count(got.String(), "wire round trip") != 2 {
			t.Errorf("text of two reports has %d wire lines, want 2", strings.Count(got.String(), "wire round trip"))
		}
	}
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"html", arr.String(), []string{"--format html: stdin holds 2 reports", r.Merge.Nodes[1].Pod}},
		{"empty", "[]", []string{"an empty array"}},
		{"not a report", "[" + one + ", {\"x\": 1}]", []string{"report 2 of 2", "no schema_version"}},
	} {
		args := []string{"-"}
		if tc.name == "html" {
			args = []string{"--format", "html", "-"}
		}
		var stdout bytes.Buffer
		err := reportCommand(args, strings.NewReader(tc.in), &stdout)
		if !cli.IsUsage(err) {
			t.Errorf("%s: got %v, want a usage error", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if stdout.Len() > 0 {
			t.Errorf("%s: wrote %q, want nothing", tc.name, stdout.Bytes())
		}
	}
}
