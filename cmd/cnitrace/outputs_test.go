package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
)

// Two output flags naming one file would have the last completed replace
// the other: refused before anything is opened, whatever the spelling.
func TestOutputsMustBeDistinct(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "r.json")
	link := filepath.Join(dir, "link.json")
	if err := os.WriteFile(report, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(report, link); err != nil {
		t.Fatal(err)
	}
	src := []string{"trace", "--netns", "/nonexistent/netns", "--to", "10.0.0.2"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--out and --pcap", []string{"--out", report, "--pcap", report}, "--out " + report + " and --pcap " + report + " name the same file"},
		{"--pcap and --bundle, spelled apart", []string{"--pcap", report, "--bundle", filepath.Join(dir, ".", "r.json")}, "--pcap " + report + " and --bundle"},
		{"--out and a link to it", []string{"--out", report, "--bundle", link}, "name the same file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(src, tc.args...)...)
			if code != cli.ExitUsage {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, cli.ExitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
			if errLine, _ := lastErrorLines(stderr); !strings.Contains(errLine, tc.want) {
				t.Errorf("error line %q does not say %q", errLine, tc.want)
			}
			if b, err := os.ReadFile(report); err != nil || string(b) != "keep" {
				t.Errorf("the file was touched: %q, %v", b, err)
			}
		})
	}
}

// The advice for a refused path suits the flag: a file name of the kind it
// writes, and stdout only for --out, the one that may take it.
func TestOutputAdviceNamesTheFlagsKind(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		flag, want string
	}{
		{"--out", filepath.Join(dir, "report.txt")},
		{"--pcap", filepath.Join(dir, "hops.pcapng")},
		{"--bundle", filepath.Join(dir, "evidence.tar.gz")},
	} {
		_, err := openOutput(tc.flag, dir, os.Stdout)
		if err == nil || !cli.IsUsage(err) {
			t.Fatalf("openOutput(%s, a directory): got %v, want a usage error", tc.flag, err)
		}
		if !strings.Contains(err.Error(), "such as "+tc.want) {
			t.Errorf("openOutput(%s, a directory): got %q, want it to suggest %s", tc.flag, err, tc.want)
		}
	}
	_, err := openOutput("--pcap", "/proc/version", os.Stdout)
	if err == nil || strings.Contains(err.Error(), "stdout") {
		t.Errorf("openOutput(--pcap, /proc/version): got %v, want an error that offers no stdout", err)
	}
}

// --bundle reads the host's files under --host-root: one that is no
// directory is a usage error before anything is opened or sent.
func TestBundleHostRootChecked(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "b.tar.gz")
	code, _, stderr := runCLI(t, "trace", "--netns", "/nonexistent/netns", "--to", "10.0.0.2", "--bundle", bundle, "--host-root", "/nonexistent/host")
	if code != cli.ExitUsage {
		t.Errorf("got exit code %d, want %d (stderr %q)", code, cli.ExitUsage, stderr)
	}
	if errLine, _ := lastErrorLines(stderr); !strings.Contains(errLine, "--host-root /nonexistent/host: no such directory") {
		t.Errorf("error line %q does not name --host-root", errLine)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("the bundle %s was left behind: %v", bundle, err)
	}
	code, _, stderr = runCLI(t, "trace", "--netns", "/nonexistent/netns", "--to", "10.0.0.2", "--host-root", "/")
	if errLine, _ := lastErrorLines(stderr); code != cli.ExitUsage || !strings.Contains(errLine, "only --pod and --bundle use it") {
		t.Errorf("--host-root without --pod or --bundle: got exit %d, %q, want a usage error saying who uses it", code, errLine)
	}
}
