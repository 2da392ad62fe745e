package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Issue 14: listen on node 2, trace from node 1's pod with --for-merge,
// merge the two files.

// listenTimeout bounds a listen run; the tests stop it once their trace
// is done.
const listenTimeout = 2 * time.Minute

// listener is a `cnitrace listen` running in this process on node 2 of a
// lab, toward node 1's pod.
type listener struct {
	file   string
	ready  string // its --ready-file, removed when it exits
	cancel context.CancelFunc
	done   chan error
}

// startListen starts listen on node 2 toward node 1's pod and returns
// once its captures are armed (its --ready-file is there).
func startListen(t *testing.T, l *lab.Lab) *listener {
	t.Helper()
	return startListenIn(t, l, l.Nodes[1].Pod)
}

// startListenIn starts listen on node 2 for pod (node 2's pod or its
// sibling), toward node 1's pod, as startListen does.
func startListenIn(t *testing.T, l *lab.Lab, pod *lab.Pod) *listener {
	t.Helper()
	dir := t.TempDir()
	ls := &listener{file: filepath.Join(dir, "listen.json"), done: make(chan error, 1)}
	ready := filepath.Join(dir, "ready")
	ls.ready = ready
	ctx, cancel := context.WithCancel(context.Background())
	ls.cancel = cancel
	n2 := l.Nodes[1]
	args := []string{"listen", "--netns", pod.NSPath, "--node-netns", n2.NSPath, "--from", l.Nodes[0].Pod.Addr.String(),
		"--duration", listenTimeout.String(), "--out", ls.file, "--ready-file", ready, "--quiet"}
	go func() {
		var out, errb bytes.Buffer
		if code := run(ctx, args, &out, &errb); code != 0 {
			ls.done <- errors.New("listen: exit code " + strconv.Itoa(code) + ": " + errb.String())
			return
		}
		ls.done <- nil
	}()
	t.Cleanup(cancel)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return ls
		}
		select {
		case err := <-ls.done:
			t.Fatalf("listen ended before it was ready: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("listen: not ready after 30s")
		}
	}
}

// stop ends the listen run and returns its file.
func (ls *listener) stop(t *testing.T) string {
	t.Helper()
	ls.cancel()
	select {
	case err := <-ls.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("listen did not stop within 30s of its interruption")
	}
	if _, err := os.Lstat(ls.ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("listen left its --ready-file %s behind: %v", ls.ready, err)
	}
	return ls.file
}

// traceForMerge traces count probes every interval from node 1's pod to
// node 2's with --for-merge and returns the report's file.
func traceForMerge(t *testing.T, l *lab.Lab, count int, interval time.Duration) string {
	t.Helper()
	return traceForMergeTo(t, l, count, interval, l.TraceArgs()...)
}

// traceForMergeTo is traceForMerge with target the trace's source and
// target flags (l.TraceArgs() and more).
func traceForMergeTo(t *testing.T, l *lab.Lab, count int, interval time.Duration, target ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "trace.json")
	args := append([]string{"trace", "--format", "json", "--for-merge", "--out", file, "--quiet",
		"--count", strconv.Itoa(count), "--interval", interval.String(), "--timeout", "500ms"}, target...)
	if code, _, stderr := runCLI(t, args...); code != 0 && code != 3 {
		t.Fatalf("trace --for-merge: exit code %d; stderr:\n%s", code, stderr)
	}
	return file
}

// mergeFiles merges the files and decodes the JSON report.
func mergeFiles(t *testing.T, files ...string) *report.Result {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{"merge", "--format", "json"}, files...)...)
	if code != 0 {
		t.Fatalf("merge: exit code %d; stderr:\n%s", code, stderr)
	}
	r, err := report.Decode(bytes.NewReader([]byte(stdout)))
	if err != nil {
		t.Fatalf("merge: decode: %v\n%s", err, stdout)
	}
	if r.Merge == nil {
		t.Fatalf("merge: no merge block:\n%s", stdout)
	}
	return r
}

// bothNodes runs listen on node 2 and a trace from node 1 during it, and
// returns the two files.
func bothNodes(t *testing.T, l *lab.Lab, count int, interval time.Duration) (traceFile, listenFile string) {
	t.Helper()
	ls := startListen(t, l)
	traceFile = traceForMerge(t, l, count, interval)
	return traceFile, ls.stop(t)
}

// TestPrivilegedListenMerge: ICMP, and TCP SYNs to node 2's pod's
// backend port (whose SYN-ACKs carry no token: each node's Recorder ties
// them to the SYN it saw), on both layouts.
func TestPrivilegedListenMerge(t *testing.T) {
	for _, layout := range lab.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: layout, Backends: true})
			t.Run("icmp", func(t *testing.T) { checkListenMerge(t, l, layout, l.TraceArgs()...) })
			t.Run("tcp", func(t *testing.T) {
				checkListenMerge(t, l, layout, append(l.TraceArgs(), "--proto", "tcp", "--port", strconv.Itoa(lab.BackendPort))...)
			})
			// A source on the listener's own node: nothing to listen for.
			n2, out := l.Nodes[1], filepath.Join(t.TempDir(), "peer.json")
			code, _, stderr := runCLI(t, "listen", "--netns", n2.Pod.NSPath, "--node-netns", n2.NSPath, "--from", n2.Sibling.Addr.String(), "--duration", "1s", "--out", out)
			if _, err := os.Stat(out); code != cli.ExitUsage || !strings.Contains(stderr, "turns around on this node") || err == nil {
				t.Errorf("listen --from a pod of its own node: exit code %d, stderr %q, file left: %v", code, stderr, err == nil)
			}
		})
	}
}

// checkListenMerge listens on node 2, traces 30 probes from node 1 with
// the target flags, merges, and checks every point by kind and every probe
// at every segment.
func checkListenMerge(t *testing.T, l *lab.Lab, layout lab.Layout, target ...string) {
	t.Helper()
	const n = 30
	ls := startListen(t, l)
	tf := traceForMergeTo(t, l, n, 20*time.Millisecond, target...)
	lf := ls.stop(t)
	r := mergeFiles(t, tf, lf)
	var kinds []string
	for _, p := range r.Points {
		kinds = append(kinds, p.ID+":"+p.Kind)
	}
	want := map[string][]string{
		"flannel": {"a0:pod", "a1:veth", "a2:bridge", "a3:vxlan", "a4:uplink", "b0:uplink", "b1:vxlan", "b2:bridge", "b3:veth", "b4:pod"},
	}[string(layout)]
	if want != nil && !slicesEqual(kinds, want) {
		t.Errorf("points %v, want %v", kinds, want)
	}
	if got, want := len(r.Segments), 2*len(r.Points)-1; got != want {
		t.Fatalf("%d segments for %d points, want %d", got, len(r.Points), want)
	}
	if m := r.Merge; m.Matched != n || m.Probes != n || m.WireRTT == nil || m.Clock.Error != "" || m.Request == nil || len(m.Disagreements) != 0 {
		t.Errorf("merge block: %d of %d matched, wire %v, clock %+v, disagreements %+v", m.Matched, m.Probes, m.WireRTT, m.Clock, m.Disagreements)
	}
	target2 := false
	for _, s := range r.Segments {
		if s.Seen != n || s.Lost != 0 {
			t.Errorf("segment %s->%s (%s %s): seen %d lost %d, want %d and 0", s.From, s.To, s.Direction, s.Class, s.Seen, s.Lost, n)
		}
		target2 = target2 || (s.Class == report.ClassTarget && s.US != nil)
	}
	if !target2 {
		t.Errorf("no timed target segment: node 2's pod's own stack is missing")
	}
	t.Logf("%s: wire rtt p50 %.1f us; request p50 %.1f, reply p50 %.1f us, bound +/-%.1f us", cmp.Or(r.Proto, "icmp"), r.Merge.WireRTT.P50, r.Merge.Request.P50, r.Merge.Reply.P50, r.Merge.Clock.BoundUS)
	code, text, stderr := runCLI(t, "merge", lf, tf) // any order, text
	if code != 0 || !bytes.Contains([]byte(text), []byte("wire round trip")) {
		t.Errorf("merge --format text: exit code %d, stderr %s, output:\n%s", code, stderr, text)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPrivilegedMergeClockIndependence shifts every stamp of node 2's file
// by a second either way and adds a 50 ppm drift: the merged segments and
// both one-way wires stay within the bound of the unshifted merge.
func TestPrivilegedMergeClockIndependence(t *testing.T) {
	l := labtest.New(t)
	tf, lf := bothNodes(t, l, 150, 20*time.Millisecond) // 3 s: a drift term is fitted
	base := mergeFiles(t, tf, lf)
	bound := base.Merge.Clock.BoundUS
	if !base.Merge.Clock.DriftFitted || bound <= 0 {
		t.Fatalf("unshifted clock %+v, want a drift fit and a bound", base.Merge.Clock)
	}
	for _, shift := range []time.Duration{time.Second, -time.Second} {
		r := mergeFiles(t, tf, shiftListen(t, tf, lf, shift, 50e-6))
		for i, s := range r.Segments {
			b := base.Segments[i]
			if (s.US == nil) != (b.US == nil) {
				t.Fatalf("shift %s: segment %s->%s timed %v, unshifted %v", shift, s.From, s.To, s.US, b.US)
			}
			if s.US != nil && (abs(s.US.P50-b.US.P50) > bound || abs(s.US.P90-b.US.P90) > bound) {
				t.Errorf("shift %s: segment %s->%s (%s) p50/p90 %.1f/%.1f us, unshifted %.1f/%.1f, bound %.1f", shift, s.From, s.To, s.Class, s.US.P50, s.US.P90, b.US.P50, b.US.P90, bound)
			}
		}
		m, bm := r.Merge, base.Merge
		if abs(m.Request.P50-bm.Request.P50) > bound || abs(m.Reply.P50-bm.Reply.P50) > bound {
			t.Errorf("shift %s: one-way p50s %.1f/%.1f us, unshifted %.1f/%.1f, bound %.1f", shift, m.Request.P50, m.Reply.P50, bm.Request.P50, bm.Reply.P50, bound)
		}
		if got, want := m.Clock.OffsetUS-bm.Clock.OffsetUS, float64(shift.Microseconds()); abs(got-want) > bound+1 {
			t.Errorf("shift %s: the offset moved by %.1f us", shift, got)
		}
		if abs(m.Clock.DriftPPM-bm.Clock.DriftPPM-50) > 5 {
			t.Errorf("shift %s: the drift moved by %.2f ppm, want 50", shift, m.Clock.DriftPPM-bm.Clock.DriftPPM)
		}
	}
}

func abs(x float64) float64 { return max(x, -x) }

// probeID names one probe across files.
type probeID struct {
	run report.RunID
	seq uint32
}

// seenEverywhere returns the probes of a trace --for-merge report seen
// at every step of its path.
func seenEverywhere(t *testing.T, traceFile string) map[probeID]bool {
	t.Helper()
	data, err := os.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Stamps *report.Stamps `json:"stamps"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.Stamps == nil {
		t.Fatalf("%s: no stamps (%v)", traceFile, err)
	}
	seen := make(map[probeID]bool)
	for _, run := range r.Stamps.Runs {
		for _, p := range run.Probes {
			if len(p.At) > 0 && !slices.Contains(p.At, 0) {
				seen[probeID{run.RunID, p.Seq}] = true
			}
		}
	}
	return seen
}

// shiftListen writes a copy of the listen file whose every stamp (and
// window) is moved by shift plus drift times the time since the first
// probe both files saw at every step (traceFile is the trace's report).
func shiftListen(t *testing.T, traceFile, file string, shift time.Duration, drift float64) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s report.Stamps
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	// The drift counts from where the merge reports the offset: the first
	// probe both nodes saw at their uplinks both ways. Counted from the
	// listener's first stamp instead, a probe or two the trace's rings
	// missed while arming on a loaded machine would move the offset by
	// drift times their 20 ms each, more than the bound.
	seen := seenEverywhere(t, traceFile)
	t0 := int64(0)
	for _, r := range s.Runs {
		for _, p := range r.Probes {
			if !seen[probeID{r.RunID, p.Seq}] || len(p.At) == 0 || slices.Contains(p.At, 0) {
				continue
			}
			if first := slices.Min(p.At); t0 == 0 || first < t0 {
				t0 = first
			}
		}
	}
	if t0 == 0 {
		t.Fatalf("no probe was seen at every step of both %s and %s", traceFile, file)
	}
	move := func(ns int64) int64 { return ns + int64(shift) + int64(drift*float64(ns-t0)) }
	for i := range s.Runs {
		for j := range s.Runs[i].Probes {
			at := s.Runs[i].Probes[j].At
			for k, ns := range at {
				if ns != 0 {
					at[k] = move(ns)
				}
			}
		}
	}
	s.Start, s.End = time.Unix(0, move(s.Start.UnixNano())), time.Unix(0, move(s.End.UnixNano()))
	out := filepath.Join(t.TempDir(), "shifted.json")
	var b bytes.Buffer
	if err := report.EncodeStamps(&b, &s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}
