package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/nodestate"
)

// bundleFile is one member of an extracted bundle.
type bundleFile struct {
	hdr  *tar.Header
	data []byte
}

// readBundle reads a bundle with archive/tar and returns its members'
// names in order and the members by name.
func readBundle(t *testing.T, r io.Reader) ([]string, map[string]bundleFile) {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("the bundle is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	var names []string
	files := map[string]bundleFile{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read the bundle's tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := files[hdr.Name]; dup {
			t.Errorf("%s is in the bundle twice", hdr.Name)
		}
		names = append(names, hdr.Name)
		files[hdr.Name] = bundleFile{hdr, data}
	}
	return names, files
}

// readmeFiles returns the names README.txt lists under Files, and the
// lines under Not collected.
func readmeFiles(t *testing.T, readme string) (files, gaps []string) {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\nFiles\n-----\n")
	if !ok {
		t.Fatalf("README.txt has no Files section:\n%s", readme)
	}
	list, notCollected, ok := strings.Cut(rest, "\n\nNot collected\n-------------\n")
	if !ok {
		t.Fatalf("README.txt has no Not collected section:\n%s", readme)
	}
	for line := range strings.Lines(list) {
		name, about, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok || strings.TrimSpace(about) == "" {
			t.Errorf("README.txt: a file without a description: %q", line)
		}
		files = append(files, name)
	}
	for line := range strings.Lines(notCollected) {
		gaps = append(gaps, strings.TrimSpace(line))
	}
	return files, gaps
}

// fakePcap hands over fixed bytes as the recorder would.
type fakePcap []byte

func (p fakePcap) size() int64 { return int64(len(p)) }
func (p fakePcap) writeTo(w io.Writer) (int64, error) {
	n, err := w.Write(p)
	return int64(n), err
}

func testResult() *report.Result {
	start := time.Date(2026, 8, 17, 10, 15, 0, 123e6, time.UTC)
	return &report.Result{
		SchemaVersion: report.SchemaVersion, Target: "10.244.2.2",
		Source: report.Source{NetNS: "net:[4026532301]", Interface: "eth0", Addr: "10.244.1.2"},
		Run: &report.Run{
			Command: []string{"cnitrace", "trace", "--netns", "/run/netns/web 0", "--to", "10.244.2.2", "--bundle", "e.tar.gz"},
			Version: "v0.0.0 0123456789ab", Kernel: "6.1.0", Node: "node-1", Started: start, Ended: start.Add(3 * time.Second),
		},
	}
}

func testPath() *topology.Path {
	return &topology.Path{
		Target: netip.MustParseAddr("10.244.2.2"),
		Source: topology.Source{NetNS: "net:[4026532301]", Interface: "eth0", Addr: netip.MustParseAddr("10.244.1.2")},
		Points: []topology.Point{{ID: "p0", Interface: "eth0", Ifindex: 2, NetNS: "net:[4026532301]", Kind: topology.KindPod, RequestDir: topology.TX}},
	}
}

// The tarball: one top directory named by the run's start, directories
// before their files, README.txt first, the state files node/, pod/, cni/
// in name order, every mtime the run's start (to the second), and the same
// bytes every time. README.txt lists every file and what is missing.
func TestBundleTarball(t *testing.T) {
	b := &bundleWriter{id: "0badc0de", hostRoot: "/host", taken: time.Date(2026, 8, 17, 10, 15, 1, 0, time.UTC),
		snap: &nodestate.Snapshot{
			Files: []nodestate.File{
				{Name: "pod/links.json", About: "pod links", Data: []byte("{}\n")},
				{Name: "node/sysctls.json", About: "node sysctls", Data: []byte("{}\n")},
				{Name: "cni/net.d/10-flannel.conflist", About: "a conflist", Data: []byte("{}\n")},
				{Name: "node/links.json", About: "node links", Data: []byte("{}\n")},
			},
			Gaps: []nodestate.Gap{{Name: "node/nft-ruleset.txt", Why: "nft not found under /host"}},
		},
		flowsErr: errors.New("read conntrack: operation not permitted (needs CAP_NET_ADMIN)"),
	}
	write := func() []byte {
		var buf bytes.Buffer
		r := testResult()
		members, gaps := b.members(r, testPath(), fakePcap("pcapng bytes"))
		all := append([]member{{name: "README.txt", about: "this file"}}, members...)
		all[0].data = b.readme(r, testPath(), all, gaps)
		if err := writeTarball(&buf, "cnitrace-20260817T101500Z-0badc0de", r.Run.Started.Truncate(time.Second), all); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tgz := write()
	if !bytes.Equal(tgz, write()) {
		t.Error("two writes of the same bundle differ")
	}
	names, files := readBundle(t, bytes.NewReader(tgz))
	const top = "cnitrace-20260817T101500Z-0badc0de/"
	var want []string
	for _, n := range []string{"", "README.txt", "version.txt", "report.txt", "report.json"} {
		want = append(want, top+n)
	}
	if got := names[:len(want)]; !slices.Equal(got, want) {
		t.Errorf("the bundle starts with %q, want %q", got, want)
	}
	tail := []string{top + "node/", top + "node/links.json", top + "node/sysctls.json", top + "pod/", top + "pod/links.json",
		top + "cni/", top + "cni/net.d/", top + "cni/net.d/10-flannel.conflist"}
	if got := names[len(names)-len(tail):]; !slices.Equal(got, tail) {
		t.Errorf("the bundle ends with %q, want %q", got, tail)
	}
	for _, n := range names {
		f := files[n]
		if !strings.HasPrefix(n, top) {
			t.Errorf("%s is outside the top directory", n)
		}
		if want := time.Date(2026, 8, 17, 10, 15, 0, 0, time.UTC); !f.hdr.ModTime.Equal(want) {
			t.Errorf("%s: mtime %s, want the run's start %s", n, f.hdr.ModTime, want)
		}
		if f.hdr.Uid != 0 || f.hdr.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", n, f.hdr.Uid, f.hdr.Gid)
		}
	}
	if got := string(files[top+"capture.pcapng"].data); got != "pcapng bytes" {
		t.Errorf("capture.pcapng holds %q, want what the recorder handed over", got)
	}
	listed, gaps := readmeFiles(t, string(files[top+"README.txt"].data))
	for _, n := range names {
		if rel := strings.TrimPrefix(n, top); rel != "" && !strings.HasSuffix(rel, "/") && !slices.Contains(listed, rel) {
			t.Errorf("README.txt does not list %s", rel)
		}
	}
	for _, l := range listed {
		if _, ok := files[top+l]; !ok {
			t.Errorf("README.txt lists %s, which is not in the bundle", l)
		}
	}
	for _, g := range []string{"node/nft-ruleset.txt: nft not found under /host", "node/conntrack.json: read conntrack: operation not permitted (needs CAP_NET_ADMIN)"} {
		if !slices.Contains(gaps, g) {
			t.Errorf("README.txt's Not collected lacks %q: %q", g, gaps)
		}
	}
	version := string(files[top+"version.txt"].data)
	if !strings.Contains(version, "command: cnitrace trace --netns '/run/netns/web 0' --to 10.244.2.2 --bundle e.tar.gz\n") {
		t.Errorf("version.txt lacks the command line, quoted:\n%s", version)
	}

	if _, err := exec.LookPath("tar"); err != nil {
		t.Skipf("skipping the check with tar: %v", err)
	}
	f := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := os.WriteFile(f, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tar", "-tzf", f).Output()
	if err != nil {
		t.Fatalf("tar -tzf: %v", err)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, names) {
		t.Errorf("tar -tzf lists %q, want %q", got, names)
	}
}

// A bundle that cannot be written is a usage error before anything is
// done, and leaves nothing behind.
func TestBundleRefused(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{dir, filepath.Join(dir, "missing", "b.tar.gz"), "/proc/version", "-"} {
		t.Run(path, func(t *testing.T) {
			b, err := openBundle(path, io.Discard)
			if !cli.IsUsage(err) || !strings.HasPrefix(err.Error(), "--bundle ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("openBundle(%s) = %v, want a one-line usage error naming --bundle", path, err)
			}
			if b != nil {
				b.abort()
			}
		})
	}
	// Through the command: refused before the source is even looked at.
	code, stdout, stderr := runCLI(t, "trace", "--netns", filepath.Join(dir, "no-such-netns"), "--to", "10.244.2.2", "--bundle", dir)
	if code != cli.ExitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--bundle "+dir) {
		t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d and one line about --bundle", code, stdout, stderr, cli.ExitUsage)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind in %s: %v", dir, entries)
	}
}

func TestQuoteArgs(t *testing.T) {
	got := (&report.Run{Command: []string{"cnitrace", "trace", "--pod", "default/web-0", "--to", "fd00::2", "", "it's", "a b"}}).CommandLine()
	want := `cnitrace trace --pod default/web-0 --to fd00::2 '' 'it'\''s' 'a b'`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
