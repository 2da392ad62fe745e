package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// flannelResult is the golden scenario: the delays measured in design.md,
// the inherited stamps of a node with the RX-timestamping key on, jitter in
// cni0 -> flannel.1, one probe lost in the network, a capture at flannel.1
// that dropped 3 packets (two probes it missed, and one unanswered probe last
// seen at cni0 that therefore cannot be located), two foreign packets,
// kernel send stamps (SCHED, but none for probe 23) and one reply the pod's
// interface missed (probe 9).
func flannelResult(t *testing.T) *Result {
	t.Helper()
	rn := run{
		n:       30,
		delays:  designDelays(),
		inherit: map[int]bool{segVethBridge: true, segUplinkVXLAN: true},
		lostIn:  map[int]int{17: segNetwork, 26: segBridgeVXLAN},
		missing: map[[2]int]bool{{8, 6}: true, {12, 3}: true, {9, 9}: true},
		stamps: func(seq int) time.Duration {
			if seq == 23 {
				return 0
			}
			return -1500 * time.Nanosecond
		},
		jitter: func(seq, seg int) time.Duration {
			switch seg {
			case segBridgeVXLAN:
				return time.Duration(seq*37%23) * time.Microsecond
			case segNetwork:
				return time.Duration(seq*13%7) * 100 * time.Nanosecond
			}
			return 0
		},
	}
	res, obs := rn.build()
	other := obs[0]
	other.Payload = probe.Payload{RunID: 7, Seq: 1}.Marshal(56)
	noise := obs[1]
	noise.Payload = []byte("not a probe")
	stats := []capture.PointStats{
		{Point: "p0", Packets: 59}, {Point: "p1", Packets: 59}, {Point: "p2", Packets: 60},
		{Point: "p3", Packets: 59, Drops: 3}, {Point: "p4", Packets: 58},
	}
	r, err := replay(flannelPath(), res, &capture.Capture{Observations: append(obs, other, noise), Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	r.Run = flannelRun()
	return r
}

// flannelRun is the run block of the golden scenario, as trace fills it
// in: an --out file name with a space, to be quoted in the Markdown
// report's command.
func flannelRun() *Run {
	return &Run{
		Command: []string{"cnitrace", "trace", "--netns", "/run/netns/web-0", "--to", "10.244.2.2",
			"--interval", "10ms", "--format", "markdown", "--out", "web-0 report.md"},
		Version: "v0.9.0 4f1c2ab39d07",
		Kernel:  "6.12.48+deb13-amd64",
		Node:    "node-a",
		Started: runStart.UTC().Add(-3 * time.Millisecond),
		Ended:   runStart.UTC().Add(1_297_416 * time.Microsecond),
	}
}

// variedResult is a Result that shows one part of the report.
type variedResult struct {
	name string
	r    *Result
}

// variedResults are Results that, between them, use every part of the
// report: the golden one, a baseline, an incomplete run, a long one past
// ExactProbes, few samples, NAT rewrites, a hostNetwork pod, losses in the
// source's stack, late and dropped probes, no answer at all, nothing.
func variedResults(t *testing.T) []variedResult {
	t.Helper()
	baseline := run{n: 5, delays: designDelays()}.correlate(t)
	baseline.Baseline = compareBaseline(pod(150, -1, 170, 160, 155), node(100, 105, 110, -1, 120))
	baseline.Baseline.NetNS, baseline.Baseline.Observations = hostNS, 16

	incomplete := flannelResult(t)
	incomplete.Incomplete = true
	incomplete.Run.Ended = time.Time{}

	long := flannelResult(t)
	long.ExactProbes, long.Probes.Sent = ExactProbes, 3*ExactProbes

	few := run{n: 4, delays: designDelays(), lostIn: map[int]int{2: segBridgeVXLAN}}.correlate(t)
	few.Run = &Run{Command: []string{"cnitrace", "trace", "--netns", "/proc/4242/ns/net", "--to", "10.244.2.2", "--count", "4"}, Kernel: "6.1.0-13-amd64",
		Started: time.Date(2027, 1, 15, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))}

	host := run{n: 3, delays: designDelays()}.correlate(t)
	host.Source.Pod, host.Source.SandboxID, host.Source.HostNetwork = "kube-system/kube-proxy-x7k2p", "f914fe16d2dd9c3a7e0b", true
	host.Run = flannelRun()

	stack := run{n: 6, delays: designDelays(), lostIn: map[int]int{1: -1, 4: numSegs}, refused: map[int]error{1: errors.New("sendmsg: operation not permitted")}}.correlate(t)
	stack.Probes.Late, stack.Probes.Dropped = 1, 1
	stack.Socket = &SocketStats{Drops: 2, LateReplies: 1}

	none := run{n: 3, delays: designDelays(), lostIn: map[int]int{0: segNetwork, 1: segNetwork, 2: segNetwork}}.correlate(t)

	return []variedResult{
		{"golden", flannelResult(t)},
		{"baseline", baseline},
		{"incomplete", incomplete},
		{"exact probes", long},
		{"few samples", few},
		{"rewrites", rewritten(t)},
		{"hostNetwork pod", host},
		{"source stack", stack},
		{"no answer", none},
		{"empty", &Result{SchemaVersion: SchemaVersion}},
	}
}

// rewritten is a Service's DNAT between p2 and p3, as TestRewrites has it.
func rewritten(t *testing.T) *Result {
	t.Helper()
	const vip, backend, pod = "10.96.0.10", "10.244.2.2", "10.244.1.2"
	path := flannelPath()
	path.Target, path.Translated = netip.MustParseAddr(vip), netip.MustParseAddr(backend)
	res, obs := run{path: path, n: 3, delays: designDelays()}.build()
	for i := range obs {
		o := &obs[i]
		dst := vip
		if o.Point == "p3" || o.Point == "p4" {
			dst = backend
		}
		src := netip.MustParseAddr(pod)
		if o.IsRequest() {
			o.Src, o.Dst = src, netip.MustParseAddr(dst)
		} else {
			o.Src, o.Dst = netip.MustParseAddr(dst), src
		}
	}
	r, err := replay(path, res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// goldenFile is the golden file of the flannel scenario in format f.
func goldenFile(f Format) string { return "../testdata/report-flannel.golden" + f.Ext() }

// TestRenderGolden keeps one golden file per format of Formats.
func TestRenderGolden(t *testing.T) {
	for _, f := range Formats() {
		t.Run(f.String(), func(t *testing.T) {
			var b bytes.Buffer
			if err := Render(&b, flannelResult(t), f); err != nil {
				t.Fatal(err)
			}
			golden(t, goldenFile(f), b.Bytes())
		})
	}
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got:\n%s\nwant (%s):\n%s", got, file, want)
	}
}

// TestRenderJSONContract reads the output back as plain JSON and checks the
// field names of the contract, which may never be renamed.
func TestRenderJSONContract(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, flannelResult(t), FormatJSON); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"schema_version", "target", "source.netns", "source.interface", "source.addr",
		"probes.sent", "probes.received", "probes.ignored", "rtt_us.p50", "rtt_us.p90", "rtt_us.p99", "rtt_us.max",
		"rtt_source", "rtt_path_us.p50", "rtt_user_us.p50", "points.0.id", "points.0.interface", "points.0.netns", "points.0.ifindex", "points.0.kind",
		"segments.0.from", "segments.0.to", "segments.0.direction", "segments.0.class", "segments.0.separable",
		"segments.0.seen", "segments.0.lost", "segments.0.us.p50", "segments.2.merged_from", "segments.1.note",
		"verdict.class", "verdict.from", "verdict.to", "verdict.direction", "verdict.share", "verdict.basis",
		"verdict.text", "verdict.loss.lost", "incomplete",
		// added in schema_version 1
		"segments.0.unknown", "points.3.capture.packets", "points.3.capture.drops", "points.3.capture.freezes",
		"points.3.capture.undecodable", "verdict.unknown", "rtt_ping_us.p50", "rtt_clocks.send.kernel-sched",
		"rtt_clocks.send.user", "rtt_clocks.receive.capture", "rtt_clocks.receive.user",
		"rtt_notes.0", "segments.1.notes.0",
	} {
		if _, ok := lookup(m, key); !ok {
			t.Errorf("got no %s in the JSON output", key)
		}
	}
	if _, ok := lookup(m, "segments.1.us"); ok {
		t.Errorf("got us on a non-separable segment, want none")
	}
	if _, ok := lookup(m, "segments.0.notes"); ok {
		t.Errorf("got notes on a segment without any, want the field omitted")
	}
	if v, _ := lookup(m, "schema_version"); v != 1.0 {
		t.Errorf("got schema_version %v, want 1", v)
	}
}

// lookup follows a dotted path of keys and indexes through decoded JSON.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i := int(k[0] - '0')
			if len(k) != 1 || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr string
	}{
		{"text", FormatText, ""},
		{"json", FormatJSON, ""},
		{"markdown", FormatMarkdown, ""},
		{"html", FormatHTML, ""},
		{"xml", 0, `unknown output format "xml" (want text, json, markdown or html)`},
		{"", 0, `unknown output format "" (want text, json, markdown or html)`},
		{"JSON", 0, `unknown output format "JSON" (want text, json, markdown or html)`},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseFormat(%q): got error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFormat(%q): got %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, nil, FormatText); err == nil {
		t.Errorf("got no error for a nil result, want one")
	}
	if err := Render(&b, &Result{}, Format(9)); err == nil {
		t.Errorf("got no error for Format(9), want one")
	}
}

func TestRenderText(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *Result)
		want []string
	}{
		{"incomplete", func(r *Result) { r.Incomplete = true }, []string{"INCOMPLETE: the run stopped early"}},
		{"escapes stay out", func(r *Result) { r.Points[1].Interface = "veth\x1b[31m\u00e9" }, []string{"p1 veth?[31m?", "veth?[31m?@net:"}},
		{"no rtt", func(r *Result) { r.RTT = nil }, []string{"rtt: no probe was answered"}},
		{"empty result", func(r *Result) { *r = Result{} }, []string{"cnitrace: 0 probes to unknown target from unknown source: 0 answered, 0 lost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := flannelResult(t)
			tt.edit(r)
			var b bytes.Buffer
			if err := Render(&b, r, FormatText); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("got:\n%s\nwant it to contain %q", got, w)
				}
			}
			for i := 0; i < len(got); i++ {
				if c := got[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
					t.Fatalf("got byte %#x at %d, want ASCII only", c, i)
				}
			}
		})
	}
}

// TestDocSample keeps the sample in docs/report-format.md in step with the
// golden text report.
func TestDocSample(t *testing.T) {
	doc, err := os.ReadFile("../docs/report-format.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../testdata/report-flannel.golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	var indented strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(string(want), "\n"), "\n") {
		indented.WriteString(strings.TrimRight("    "+l, " ") + "\n")
	}
	if !strings.Contains(string(doc), indented.String()) {
		t.Errorf("got a sample in docs/report-format.md that differs from the golden text report; want:\n%s", indented.String())
	}
}

// TestDocExample keeps the Go excerpt at the top of docs/report-format.md
// in step with Example: its lines, but for the "..." ones, appear in the
// example in that order.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/report-format.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, excerpt, ok := strings.Cut(string(doc), "\n\n    acc, err := report.NewAccumulator(")
	if !ok {
		t.Fatal("docs/report-format.md has no excerpt of Example starting with NewAccumulator")
	}
	excerpt, _, _ = strings.Cut("    acc, err := report.NewAccumulator("+excerpt, "\n\n")
	rest := string(src)
	for _, line := range strings.Split(excerpt, "\n") {
		line = strings.TrimSpace(line)
		if line == "..." {
			continue
		}
		i := strings.Index(rest, line)
		if i < 0 {
			t.Fatalf("the excerpt's line %q is not in report/example_test.go (after the lines before it)", line)
		}
		rest = rest[i+len(line):]
	}
}

// TestDocMarkdownSample keeps the Markdown sample in
// docs/report-format.md in step with the golden Markdown report: its
// start, up to the segments, and its details block, indented.
func TestDocMarkdownSample(t *testing.T) {
	doc, err := os.ReadFile("../docs/report-format.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(goldenFile(FormatMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(want), "\n\n#### Segments\n")
	_, tail, ok2 := strings.Cut(string(want), "\n<details>\n")
	if !ok || !ok2 {
		t.Fatalf("got no segments or details in %s", goldenFile(FormatMarkdown))
	}
	for _, part := range []string{head + "\n", "<details>\n" + tail} {
		var indented strings.Builder
		for _, l := range strings.Split(strings.TrimSuffix(part, "\n"), "\n") {
			indented.WriteString(strings.TrimRight("    "+l, " ") + "\n")
		}
		if !strings.Contains(string(doc), indented.String()) {
			t.Errorf("got a Markdown sample in docs/report-format.md that differs from the golden Markdown report; want:\n%s", indented.String())
		}
	}
}
