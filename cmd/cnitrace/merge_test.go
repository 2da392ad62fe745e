package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
)

var updateMerge = flag.Bool("update-merge", false, "rewrite testdata/merge/merged.golden.txt from the merge of the lab files next to it")

// The files of testdata/merge are a real lab run: `listen` on node 2
// (db-node.json) while `trace --for-merge` ran from node 1's pod
// (web-node.json), 12 probes.
const (
	mergeTrace  = "testdata/merge/web-node.json"
	mergeListen = "testdata/merge/db-node.json"
	mergeGolden = "testdata/merge/merged.golden.txt"
)

func TestMergeGolden(t *testing.T) {
	code, stdout, stderr := runCLI(t, "merge", mergeTrace, mergeListen)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	if *updateMerge {
		if err := os.WriteFile(mergeGolden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(mergeGolden)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("merge output differs from %s (go test -run TestMergeGolden -update-merge rewrites it):\n%s", mergeGolden, stdout)
	}
	// Any order of the files, every format, --out.
	for _, f := range []string{"text", "json", "markdown", "html"} {
		out := filepath.Join(t.TempDir(), "merged."+f)
		if code, _, stderr := runCLI(t, "merge", "--format", f, mergeListen, "--out", out, mergeTrace); code != 0 {
			t.Errorf("--format %s: exit code %d; stderr:\n%s", f, code, stderr)
		}
		if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), "wire") {
			t.Errorf("--format %s: %v; wrote:\n%.300s", f, err, b)
		}
	}
}

func TestMergeBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The trace's report without its stamps: an ordinary JSON report.
	var rep map[string]any
	data, err := os.ReadFile(mergeTrace)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	delete(rep, "stamps")
	plain, _ := json.Marshal(rep)
	noStamps := write("plain.json", string(plain))
	notJSON := write("notes.txt", "cnitrace: 30 probes to 10.244.2.2\n")
	var st report.Stamps
	if err := json.Unmarshal([]byte(readFile(t, mergeListen)), &st); err != nil {
		t.Fatal(err)
	}
	for i := range st.Runs {
		st.Runs[i].RunID ^= 1 // another run
	}
	var other strings.Builder
	if err := report.EncodeStamps(&other, &st); err != nil {
		t.Fatal(err)
	}
	otherRun := write("other.json", other.String())
	outDir := filepath.Join(dir, "no-such-dir", "merged.txt")
	tests := []struct {
		name    string
		args    []string
		wantMsg string
	}{
		{"no files", []string{"merge"}, "give the source node's report and at least one listen file"},
		{"one file", []string{"merge", mergeTrace}, "at least one listen file"},
		{"missing file", []string{"merge", mergeTrace, filepath.Join(dir, "nope.json")}, "nope.json: no such file or directory"},
		{"not JSON", []string{"merge", mergeTrace, notJSON}, "not a cnitrace JSON report"},
		{"report without stamps", []string{"merge", noStamps, mergeListen}, "--for-merge"},
		{"two listen files", []string{"merge", mergeListen, mergeListen}, "no source report"},
		{"two source reports", []string{"merge", mergeTrace, mergeTrace}, "two source reports"},
		{"no run in common", []string{"merge", mergeTrace, otherRun}, "none of the listen files"},
		{"bad format", []string{"merge", mergeTrace, mergeListen, "--format", "xml"}, `unknown output format "xml"`},
		{"unwritable out", []string{"merge", mergeTrace, mergeListen, "--out", outDir}, "--out"},
		{"listen without --from", []string{"listen", "--netns", "/run/netns/x"}, "listen needs --from IP, the address the probes come from"},
		{"listen with --to", []string{"listen", "--netns", "/run/netns/x", "--to", "10.244.1.2"}, "listen takes --from IP"},
		{"listen bad --from", []string{"listen", "--netns", "/run/netns/x", "--from", "10.244.1.300"}, `--from "10.244.1.300": not an IP address`},
		{"listen negative duration", []string{"listen", "--netns", "/run/netns/x", "--from", "10.244.1.2", "--duration", "-1s"}, "must not be negative"},
		{"listen no source", []string{"listen", "--from", "10.244.1.2"}, "--netns FILE or --pid PID"},
		{"listen missing netns", []string{"listen", "--netns", filepath.Join(dir, "no-netns"), "--from", "10.244.1.2", "--out", filepath.Join(dir, "l.json")}, "no-netns"},
		{"trace --for-merge without json", []string{"trace", "--netns", "/run/netns/x", "--to", "10.244.2.2", "--for-merge"}, "--for-merge: the stamps go in the JSON report only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != cli.ExitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, cli.ExitUsage, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if !strings.Contains(lines[len(lines)-1], tt.wantMsg) && !strings.Contains(stderr, tt.wantMsg) {
				t.Errorf("stderr %q does not say %q", stderr, tt.wantMsg)
			}
			if stdout != "" && !strings.HasPrefix(tt.name, "no files") {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch e.Name() {
		case "plain.json", "notes.txt", "other.json":
		default:
			t.Errorf("%s left behind in %s", e.Name(), dir)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMergeNothingLeft: with several listen files, a listener that got
// no probe of the run has no report; when none got one, merge says so
// (exit 2) instead of printing nothing and exiting 0.
func TestMergeNothingLeft(t *testing.T) {
	var rep map[string]any
	if err := json.Unmarshal([]byte(readFile(t, mergeTrace)), &rep); err != nil {
		t.Fatal(err)
	}
	run := rep["stamps"].(map[string]any)["runs"].([]any)[0].(map[string]any)
	run["probes"] = []any{}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "web-node.json")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		code, stdout, stderr := runCLI(t, "merge", "--format", format, src, mergeListen, mergeListen)
		if code != cli.ExitUsage {
			t.Errorf("--format %s: exit code %d, want %d; stdout %q, stderr %q", format, code, cli.ExitUsage, stdout, stderr)
		}
		if stdout != "" {
			t.Errorf("--format %s: stdout %q, want nothing", format, stdout)
		}
		if want := "no listen file got a probe"; !strings.Contains(stderr, want) {
			t.Errorf("--format %s: stderr %q does not say %q", format, stderr, want)
		}
	}
}

// TestMergeNewerStamps: a listen file, or a source report's stamps, of a
// newer stamps_version is a usage error with schema_version's advice,
// not "not a report" or a bare "cannot merge".
func TestMergeNewerStamps(t *testing.T) {
	dir := t.TempDir()
	bump := func(name, in, old string) string {
		b := strings.Replace(readFile(t, in), old, strings.Replace(old, "1", "2", 1), 1)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	listen := bump("db-node.json", mergeListen, `"stamps_version": 1`)
	src := bump("web-node.json", mergeTrace, `"stamps_version": 1`)
	for _, tt := range []struct{ name, src, listen, want string }{
		{"listen file", mergeTrace, listen, "merge " + listen + ": stamps_version 2 of the listen file is newer than this cnitrace reads, 1 (merge it with the cnitrace that wrote it, or a later one)"},
		{"source report", src, mergeListen, "merge " + src + ": stamps_version 2 of the report's stamps is newer than this cnitrace reads, 1 (merge it with the cnitrace that wrote it, or a later one)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "merge", tt.src, tt.listen)
			if code != cli.ExitUsage || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, cli.ExitUsage)
			}
			if want := "cnitrace: error: " + tt.want + "\n"; stderr != want {
				t.Errorf("stderr\n%q\nwant\n%q", stderr, want)
			}
		})
	}
}

// TestMergeStdin: "-" is stdin, for one of merge's files at most.
func TestMergeStdin(t *testing.T) {
	var want, got bytes.Buffer
	if err := mergeCommand([]string{mergeTrace, mergeListen}, nil, &want); err != nil {
		t.Fatal(err)
	}
	if err := mergeCommand([]string{mergeTrace, "-"}, strings.NewReader(readFile(t, mergeListen)), &got); err != nil {
		t.Fatalf("merge with the listen file on stdin: %v", err)
	}
	if got.String() != want.String() {
		t.Errorf("merge with the listen file on stdin printed\n%s\nwant\n%s", got.String(), want.String())
	}
	for _, tt := range []struct {
		name string
		args []string
		in   string
		want string
	}{
		{"twice", []string{"-", "-"}, readFile(t, mergeListen), "merge: - given twice"},
		{"not a report", []string{mergeTrace, "-"}, "not json", "merge stdin: not a cnitrace JSON report"},
	} {
		var out bytes.Buffer
		err := mergeCommand(tt.args, strings.NewReader(tt.in), &out)
		if !cli.IsUsage(err) || !strings.Contains(err.Error(), tt.want) || out.Len() > 0 {
			t.Errorf("%s: got %v and %q, want a usage error saying %q and nothing written", tt.name, err, out.String(), tt.want)
		}
	}
}
