package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// jsonReport is the JSON contract (docs/report-format.md) as a reader of
// `--format json` sees it: the test decodes the output, not Go values.
type jsonReport struct {
	SchemaVersion int `json:"schema_version"`
	Probes        struct{ Sent, Received int }
	RTT           stats `json:"rtt_us"`
	PingRTT       stats `json:"rtt_ping_us"`
	PathRTT       stats `json:"rtt_path_us"`
	Incomplete    bool
	Points        []struct {
		ID, Interface, NetNS, Kind string
		Ifindex                    int
	}
	Segments []struct {
		From, To, Direction, Class string
		Separable                  bool
		MergedFrom                 string `json:"merged_from"`
		Seen, Lost                 int
		US                         *stats `json:"us"`
	}
	Stack   struct{ Request, Reply, Unknown int } `json:"stack_loss"`
	Verdict struct {
		Class, From, To, Text string
		Loss                  *struct {
			From, To, Direction, Class string
			Lost                       int
		}
	}
	Source struct {
		NetNS, Interface, Addr, Pod string
		SandboxID                   string `json:"sandbox_id"`
		HostNetwork                 bool   `json:"host_network"`
	}
}

type stats struct{ Min, P50, P90, P99, Max float64 }

func traceLab(t *testing.T, l *lab.Lab, extra ...string) jsonReport {
	t.Helper()
	args := append([]string{"trace", "--format", "json"}, l.TraceArgs()...)
	code, stdout, stderr := runCLI(t, append(args, extra...)...)
	if code != cli.ExitOK {
		t.Fatalf("trace: exit code %d, stderr:\n%s", code, stderr)
	}
	return decodeReport(t, stdout)
}

func decodeReport(t *testing.T, stdout string) jsonReport {
	t.Helper()
	var r jsonReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("trace output is not the JSON report: %v\n%s", err, stdout)
	}
	return r
}

func TestPrivilegedTraceAcrossVXLAN(t *testing.T) {
	l := labtest.New(t)
	socketsBefore := countSockets(t)

	r := traceLab(t, l, "--count", "50", "--interval", "10ms")

	if r.SchemaVersion != 1 || r.Probes.Sent != 50 || r.Probes.Received != 50 {
		t.Fatalf("got schema %d, %d sent, %d received; want 1, 50, 50", r.SchemaVersion, r.Probes.Sent, r.Probes.Received)
	}
	var kinds []string
	for _, p := range r.Points {
		kinds = append(kinds, p.Kind)
	}
	if want := []string{"pod", "veth", "bridge", "vxlan", "uplink"}; !slices.Equal(kinds, want) {
		t.Errorf("got point kinds %v, want %v", kinds, want)
	}
	podNS, nodeNS := r.Points[0].NetNS, r.Points[1].NetNS
	for _, p := range r.Points[1:] {
		if p.NetNS != nodeNS || p.NetNS == podNS {
			t.Errorf("point %s (%s) is in %s, want the node netns %s", p.ID, p.Kind, p.NetNS, nodeNS)
		}
	}
	// Every probe at every point in both directions: each of the 2n-1
	// segments of the timeline saw all 50 at both ends.
	if got, want := len(r.Segments), 2*len(r.Points)-1; got != want {
		t.Fatalf("got %d segments, want %d", got, want)
	}
	for _, s := range r.Segments {
		if s.Seen != 50 || s.Lost != 0 {
			t.Errorf("segment %s->%s (%s): seen %d lost %d, want 50 and 0", s.From, s.To, s.Direction, s.Seen, s.Lost)
		}
		if s.Separable && (s.US == nil || s.US.P50 <= 0) {
			t.Errorf("segment %s->%s (%s) is separable but has no positive p50: %+v", s.From, s.To, s.Direction, s.US)
		}
	}
	if r.Verdict.Text == "" {
		t.Error("no verdict")
	}

	if after := countSockets(t); after != socketsBefore {
		t.Errorf("got %d open sockets after the trace, want %d as before", after, socketsBefore)
	}
}

// TestPrivilegedForwardingBloat loads the kube-proxy-at-scale incident (20k
// non-matching FORWARD rules) into node 1 and checks that the delay shows up
// in the forwarding segments and nowhere else.
func TestPrivilegedForwardingBloat(t *testing.T) {
	l := labtest.New(t)
	before := traceLab(t, l, "--count", "50", "--interval", "10ms")
	if err := l.BloatForward(context.Background(), 1, 20000); err != nil {
		t.Fatal(err)
	}
	after := traceLab(t, l, "--count", "50", "--interval", "10ms")

	kind := map[string]string{}
	for _, p := range after.Points {
		kind[p.ID] = p.Kind
	}
	for i, s := range after.Segments {
		b := before.Segments[i]
		if s.US == nil || b.US == nil {
			continue // not separable: merged into the next segment
		}
		moved := s.US.P50 - b.US.P50
		name := s.Direction + " " + s.Class + " " + kind[s.From] + "->" + kind[s.To]
		t.Logf("%-40s p50 %7.1f -> %7.1f us (%+.1f)", name, b.US.P50, s.US.P50, moved)
		switch {
		case s.Class == "forwarding" && crossesForward(s.Direction, kind[s.To]):
			if moved < 50 {
				t.Errorf("%s: p50 grew %.1f us with 20k FORWARD rules, want >= 50 us", name, moved)
			}
		case s.Class == "egress" || s.Class == "ingress" || s.Class == "network":
			if math.Abs(moved) >= 20 {
				t.Errorf("%s: p50 moved %.1f us, want < 20 us: FORWARD rules are not on this segment", name, moved)
			}
		}
	}
}

// crossesForward says whether a segment ending at a point of this kind spans
// the node's FORWARD hook: routing from the bridge to the overlay (request)
// and from the overlay to the bridge (reply).
func crossesForward(direction, toKind string) bool {
	return (direction == "request" && toKind == "vxlan") || (direction == "reply" && toKind == "bridge")
}

func TestPrivilegedPathCommand(t *testing.T) {
	l := labtest.New(t)
	code, stdout, stderr := runCLI(t, append([]string{"path"}, l.TraceArgs()...)...)
	if code != cli.ExitOK {
		t.Fatalf("path: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"pod", "veth", "bridge", "vxlan", "uplink", l.Nodes[1].Pod.Addr.String(), "beyond p4 the probes turn around in network"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("path output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestPrivilegedUnroutableTargetIsRuntimeError(t *testing.T) {
	l := labtest.New(t)
	// No node in the lab routes 10.253.0.0/16, so discovery stops before any
	// packet is sent.
	args := []string{"trace", "--netns", l.Nodes[0].Pod.NSPath, "--node-netns", l.Nodes[0].NSPath, "--to", "10.253.0.1"}
	code, _, stderr := runCLI(t, args...)
	if code != cli.ExitFailure || !strings.Contains(stderr, "10.253.0.1") {
		t.Errorf("got exit %d stderr %q, want exit 1 naming the target", code, stderr)
	}
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// pingMedianUS runs iputils ping from pod 1 to pod 2 and returns the median
// RTT of its replies in microseconds. It reports failures with t.Error, so
// it may run on another goroutine; it then returns NaN.
func pingMedianUS(t *testing.T, l *lab.Lab, count int) float64 {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Errorf("iputils ping is needed for the comparison (apt-get install iputils-ping): %v", err)
		return math.NaN()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := l.Command(ctx, l.Nodes[0].Pod.NSPath, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1",
		l.Nodes[1].Pod.Addr.String()).CombinedOutput()
	if err != nil {
		t.Errorf("ping: %v\n%s", err, out)
		return math.NaN()
	}
	var rtts []float64
	for _, m := range pingTime.FindAllStringSubmatch(string(out), -1) {
		ms, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, ms*1000)
	}
	if len(rtts) < count*9/10 {
		t.Errorf("ping got %d replies of %d:\n%s", len(rtts), count, out)
		return math.NaN()
	}
	return median(rtts)
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func countSockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// TestPrivilegedPID resolves the pod through a process inside it, as an SRE
// on a node does with the PID of a container.
func TestPrivilegedPID(t *testing.T) {
	l := labtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sleeper := l.Command(ctx, l.Nodes[0].Pod.NSPath, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); sleeper.Wait() }() // before the lab's cleanup: the netns must be free to go
	// nsenter execs sleep in the same process once it has entered the netns.
	want := l.Nodes[0].Pod.NS.ID()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.Readlink("/proc/" + strconv.Itoa(sleeper.Process.Pid) + "/ns/net")
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep never entered %s (last seen in %q)", want, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	args := []string{"trace", "--pid", strconv.Itoa(sleeper.Process.Pid), "--node-netns", l.Nodes[0].NSPath,
		"--to", l.Nodes[1].Pod.Addr.String(), "--count", "5", "--interval", "10ms", "--format", "json"}
	code, stdout, stderr := runCLI(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("trace --pid: exit %d: %s", code, stderr)
	}
	var r jsonReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Probes.Received != 5 || r.Points[0].NetNS != want {
		t.Errorf("got %d of 5 answered from %s, want 5 from the pod's %s", r.Probes.Received, r.Points[0].NetNS, want)
	}
}
