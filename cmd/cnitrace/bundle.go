package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/cmd/internal/output"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/nodestate"
)

// bundleWriter writes the --bundle tarball (docs/bundle.md): one top
// directory cnitrace-TIME-ID/ holding README.txt, version.txt, the report
// in every format, path.json, capture.pcapng, and the node's and the pod's
// network state (node/, pod/, cni/). The state is taken by snapshot, after
// discovery and before the first probe, but for the conntrack entries of
// the probes' flows, taken by write once the probes are done; write
// builds the tarball once the report is out, and commit links it into
// place. Until then the file is an unnamed temporary one (package
// output): a run that fails leaves nothing behind and replaces nothing.
type bundleWriter struct {
	out    *output.File
	id     string    // 8 hex digits, random: with the time, names the top directory
	opened time.Time // the mtime when the report has no run block

	hostRoot string
	snap     *nodestate.Snapshot
	taken    time.Time        // when snap was taken
	flows    *nodestate.Flows // open from snapshot until commit or abort
	flowsErr error
	written  bool
}

// pcapSource is what the bundle needs of the pcapng recorder (a
// *pcapRecorder; a fake in tests): the finished file's size, then its
// bytes.
type pcapSource interface {
	size() int64
	writeTo(w io.Writer) (int64, error)
}

// openBundle opens the --bundle file as --out is opened; no path gives
// nil. stdout is refused: it carries the report.
func openBundle(path string, stdout io.Writer) (*bundleWriter, error) {
	if path == "" {
		return nil, nil
	}
	if path == "-" {
		return nil, cli.Usagef("--bundle -: stdout carries the report; name a file, such as evidence.tar.gz")
	}
	out, err := openOutput("--bundle", path, stdout)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	rand.Read(id) // never fails (crypto/rand)
	return &bundleWriter{out: out, id: hex.EncodeToString(id), opened: time.Now().UTC()}, nil
}

// snapshot takes the node's and the pod's network state, and opens the
// node's conntrack for write to read after the probes. Nothing here fails
// the run: what cannot be taken is listed in README.txt.
func (b *bundleWriter) snapshot(ctx context.Context, c *traceConfig, pod, node *topology.NetNS, path *topology.Path, stderr io.Writer) {
	root, _, err := c.resolveHostRoot()
	if err != nil {
		root = "/" // openEvidence refused a bad --host-root already; a snapshot never fails the run
	}
	fmt.Fprintf(stderr, "cnitrace: taking the network state of the node and the pod for --bundle (the host's files under %s)\n", root)
	b.hostRoot, b.taken = root, time.Now().UTC()
	b.snap = nodestate.Take(ctx, node, pod, nodestate.Options{HostRoot: root, Path: path})
	b.flows, b.flowsErr = nodestate.OpenFlows(node, path, c.flow())
}

// member is one file of the tarball, in memory or streamed from the
// pcapng recorder.
type member struct {
	name  string // under the top directory
	about string
	data  []byte
	pcap  pcapSource // when set, the content, instead of data
}

// write builds the tarball: the report r in every format, path, the
// pcapng pcap recorded (when it can hand its bytes over), the snapshot
// and the conntrack entries of the probes' flows.
func (b *bundleWriter) write(r *report.Result, path *topology.Path, pcap *pcapRecorder, stderr io.Writer) error {
	var src pcapSource
	if pcap != nil { // a nil *pcapRecorder is no nil pcapSource
		src = pcap
	}
	members, gaps := b.members(r, path, src)
	if len(gaps) > 0 {
		fmt.Fprintf(stderr, "cnitrace: the bundle lacks %d of its items; its README.txt says which and why\n", len(gaps))
	}
	start := b.opened
	if r.Run != nil && !r.Run.Started.IsZero() {
		start = r.Run.Started
	}
	start = start.UTC().Truncate(time.Second)
	dir := fmt.Sprintf("cnitrace-%s-%s", start.Format("20060102T150405Z"), b.id)
	all := append([]member{{name: "README.txt", about: "this file: what every file is, and what was not collected and why"}}, members...)
	all[0].data = b.readme(r, path, all, gaps)
	if err := writeTarball(b.out, dir, start, all); err != nil {
		return fmt.Errorf("write the bundle to %s: %w", b.out.Name(), err)
	}
	b.written = true
	return nil
}

// members returns the files of the bundle after README.txt, in their
// order, and what could not be collected.
func (b *bundleWriter) members(r *report.Result, p *topology.Path, pcap pcapSource) ([]member, []nodestate.Gap) {
	var ms []member
	var gaps []nodestate.Gap
	ms = append(ms, member{name: "version.txt", about: "cnitrace's version, the command line, the kernel (uname), the node and the run's times", data: versionText(r.Run)})
	for _, f := range report.Formats() {
		name := "report" + f.Ext()
		var buf bytes.Buffer
		if err := report.Render(&buf, r, f); err != nil {
			gaps = append(gaps, nodestate.Gap{Name: name, Err: err})
			continue
		}
		ms = append(ms, member{name: name, about: fmt.Sprintf("the report, as %s (cnitrace trace --format %s)", f, f), data: buf.Bytes()})
	}
	var pj bytes.Buffer
	if err := report.RenderPath(&pj, p, r.Source, report.FormatJSON); err != nil {
		gaps = append(gaps, nodestate.Gap{Name: "path.json", Err: err})
	} else {
		ms = append(ms, member{name: "path.json", about: "the path discovered, as cnitrace path --format json prints it: the points, in request order", data: pj.Bytes()})
	}
	if pcap != nil {
		ms = append(ms, member{name: "capture.pcapng", about: "every probe packet seen at every point, one interface block per point (Wireshark, tshark)", pcap: pcap})
	} else {
		gaps = append(gaps, nodestate.Gap{Name: "capture.pcapng", Why: "the capture recorder handed over no pcapng"})
	}
	var state []nodestate.File
	if b.snap != nil {
		state = slices.Clone(b.snap.Files)
		gaps = append(gaps, b.snap.Gaps...)
	}
	switch {
	case b.flowsErr != nil:
		gaps = append(gaps, nodestate.Gap{Name: "node/conntrack.json", Err: b.flowsErr})
	case b.flows != nil:
		if f, err := b.flows.Take(); err != nil {
			gaps = append(gaps, nodestate.Gap{Name: "node/conntrack.json", Err: err})
		} else {
			state = append(state, f)
		}
	}
	slices.SortStableFunc(state, func(x, y nodestate.File) int { return stateOrder(x.Name, y.Name) })
	for _, f := range state {
		ms = append(ms, member{name: f.Name, about: f.About, data: f.Data})
	}
	return ms, gaps
}

// stateOrder orders the state files: node/, then pod/, then cni/, by name
// inside each.
func stateOrder(x, y string) int {
	rank := func(n string) int {
		return slices.IndexFunc([]string{"node/", "pod/", "cni/"}, func(p string) bool { return strings.HasPrefix(n, p) })
	}
	if rx, ry := rank(x), rank(y); rx != ry {
		return rx - ry
	}
	return strings.Compare(x, y)
}

// writeTarball writes members as a gzipped tar under dir/, with the
// directories before their files, every mtime start, owner root, in the
// order given.
func writeTarball(w io.Writer, dir string, start time.Time, members []member) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.ModTime = start
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	for _, m := range members {
		if err := writeDirs(tw, dirs, path.Dir(path.Join(dir, m.name)), start); err != nil {
			return err
		}
		if err := writeMember(tw, path.Join(dir, m.name), start, m); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// writeDirs writes the directory d and its parents, each once.
func writeDirs(tw *tar.Writer, done map[string]bool, d string, mtime time.Time) error {
	if d == "." || d == "/" || done[d] {
		return nil
	}
	if err := writeDirs(tw, done, path.Dir(d), mtime); err != nil {
		return err
	}
	done[d] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime})
}

func writeMember(tw *tar.Writer, name string, mtime time.Time, m member) error {
	size := int64(len(m.data))
	if m.pcap != nil {
		size = m.pcap.size()
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
		return err
	}
	if m.pcap == nil {
		_, err := tw.Write(m.data)
		return err
	}
	n, err := m.pcap.writeTo(tw)
	if err == nil && n != size {
		err = fmt.Errorf("the recorder wrote %d bytes of %d", n, size)
	}
	return err
}

// commit links the bundle into place; write must have been called.
func (b *bundleWriter) commit() error {
	b.flows.Close()
	if !b.written {
		b.out.Abort()
		return errors.New("write the bundle: nothing was written")
	}
	if err := b.out.Commit(); err != nil {
		return fmt.Errorf("write the bundle to %s: %w", b.out.Name(), err)
	}
	return nil
}

// abort discards the bundle; it does nothing once committed.
func (b *bundleWriter) abort() {
	b.flows.Close()
	b.out.Abort()
}

// readme is README.txt: what the run was, how to read the bundle, every
// file in it (members, README.txt first) and what was not collected.
func (b *bundleWriter) readme(r *report.Result, p *topology.Path, members []member, gaps []nodestate.Gap) []byte {
	var w bytes.Buffer
	source := r.Source.NetNS
	if r.Source.Pod != "" {
		source = "pod " + r.Source.Pod + " (" + r.Source.NetNS + ")"
	}
	target := r.Target
	if r.Translated != "" {
		target += " (translated to " + r.Translated + ")"
	}
	fmt.Fprintf(&w, "cnitrace evidence bundle\n\n")
	fmt.Fprintf(&w, "A hop breakdown of ICMP probes from %s, %s, to %s,\n", source, r.Source.Addr, target)
	if run := r.Run; run != nil {
		fmt.Fprintf(&w, "taken on node %s by cnitrace %s, from %s to %s.\n", orUnknown(run.Node), orUnknown(run.Version),
			run.Started.UTC().Format(time.RFC3339), run.Ended.UTC().Format(time.RFC3339))
	}
	if p != nil {
		fmt.Fprintf(&w, "Path: %s\n", p)
	}
	if r.Incomplete {
		fmt.Fprintf(&w, "The run was interrupted: the report covers only what was recorded.\n")
	}
	fmt.Fprintf(&w, "\nStart with report.txt, or report.html in a browser; capture.pcapng opens in\n")
	fmt.Fprintf(&w, "Wireshark. The network state (node/, pod/, cni/) was taken at %s,\n", b.taken.Format(time.RFC3339))
	fmt.Fprintf(&w, "after the path was discovered and before the first probe was sent.\n")
	fmt.Fprintf(&w, "node/conntrack.json was taken after the last probe, so that its entries show\n")
	fmt.Fprintf(&w, "what the probes went through. The node's programs and /etc/cni/net.d were\n")
	fmt.Fprintf(&w, "read under %s.\n", b.hostRoot)
	fmt.Fprintf(&w, "docs/bundle.md in cnitrace's repository tells how to read every file.\n\n")
	fmt.Fprintf(&w, "Secrets: none is collected on purpose. No environment variable, token, key\n")
	fmt.Fprintf(&w, "or socket is read; the programs ran with PATH alone; of /etc/cni/net.d only\n")
	fmt.Fprintf(&w, "the configuration files libcni reads (.conf, .conflist, .json) are copied,\n")
	fmt.Fprintf(&w, "never the kubeconfig files beside them. A few CNI plugins do keep a\n")
	fmt.Fprintf(&w, "credential in their configuration: read cni/ before you share this bundle.\n")

	fmt.Fprintf(&w, "\nFiles\n-----\n")
	width := 0
	for _, m := range members {
		width = max(width, len(m.name))
	}
	for _, m := range members {
		fmt.Fprintf(&w, "%-*s  %s\n", width, m.name, m.about)
	}
	fmt.Fprintf(&w, "\nNot collected\n-------------\n")
	if len(gaps) == 0 {
		fmt.Fprintf(&w, "(nothing: everything above was collected in full)\n")
	}
	for _, g := range gaps {
		fmt.Fprintf(&w, "%s\n", strings.ReplaceAll(g.String(), "\n", " "))
	}
	return w.Bytes()
}

// versionText is version.txt: how the report was made, from its run
// block, and the kernel as uname names it.
func versionText(run *report.Run) []byte {
	if run == nil {
		run = &report.Run{}
	}
	kernel, err := nodestate.Kernel()
	if err != nil {
		kernel = fmt.Sprintf("unknown (%v)", err)
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "cnitrace %s\n", orUnknown(run.Version))
	fmt.Fprintf(&w, "command: %s\n", run.CommandLine())
	fmt.Fprintf(&w, "kernel: %s\n", kernel)
	fmt.Fprintf(&w, "node: %s\n", orUnknown(run.Node))
	fmt.Fprintf(&w, "started: %s\n", run.Started.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&w, "ended: %s\n", run.Ended.UTC().Format(time.RFC3339Nano))
	return w.Bytes()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
