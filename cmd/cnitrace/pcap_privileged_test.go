package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/capture/tsharktest"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// pcapReport is what the pcapng tests read of the JSON report.
type pcapReport struct {
	Target string
	Probes struct{ Sent, Received, Ignored int }
	Points []struct {
		topology.Point
		Capture *struct {
			Packets, Drops, Freezes uint64
			Undecodable             int
		}
	}
	Segments []struct {
		From, To, Direction string
		Seen, Lost          int
	}
	Stack struct{ Request, Reply int } `json:"stack_loss"`
}

// tracePcap runs a trace across l writing the JSON report to a file and
// the pcapng to another, and returns both paths and the exit code.
func tracePcap(t *testing.T, l *lab.Lab, extra ...string) (pcapFile string, r pcapReport, code int) {
	t.Helper()
	dir := t.TempDir()
	pcapFile, out := filepath.Join(dir, "hops.pcapng"), filepath.Join(dir, "report.json")
	args := append([]string{"trace", "--format", "json", "--out", out, "--pcap", pcapFile}, l.TraceArgs()...)
	code, stdout, stderr := runCLI(t, append(args, extra...)...)
	if stdout != "" || (code != cli.ExitOK && code != cli.ExitFinding) {
		t.Fatalf("trace: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, b)
	}
	return pcapFile, r, code
}

// TestPrivilegedPcapMatchesReport traces across a lab that loses a fifth
// of the requests and a tenth of the replies in node 1's FORWARD chain,
// and has tshark (Debian package tshark) read the --pcap file: one
// interface per point, named and described as the point is; every packet
// commented with its probe, point and request or reply, agreeing with the
// packet itself (its token, ICMP type and direction flag); as many
// packets per interface as the report saw at that point; the statistics
// blocks carrying the report's capture drops. A second read, with
// gopacket (capture.ReadPcapNG) into a report.Accumulator, gives the
// report's segments again.
func TestPrivilegedPcapMatchesReport(t *testing.T) {
	tshark := tsharktest.Look(t)
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{ForwardRequestLoss: 0.2, ForwardReplyLoss: 0.1}})
	const count = 60
	file, r, code := tracePcap(t, l, "--count", strconv.Itoa(count), "--interval", "5ms", "--timeout", "500ms")
	if r.Probes.Sent != count || code != cli.ExitFinding {
		t.Fatalf("sent %d probes, exit %d; want %d and exit 3 (the lab loses some)", r.Probes.Sent, code, count)
	}

	ports := []string{}
	for _, p := range r.Points {
		if p.TunnelPort > 0 {
			ports = append(ports, "-d", fmt.Sprintf("udp.port==%d,vxlan", p.TunnelPort)) // to read the inner ICMP
		}
	}
	rows := tsharktest.Fields(t, tshark, file, ports, "frame.interface_id", "frame.interface_name", "frame.interface_description",
		"frame.comment", "frame.packet_flags_direction", "icmp.type", "data.data")
	perIface := make([]int, len(r.Points))
	runs := map[string]bool{}
	for i, row := range rows {
		id, err := strconv.Atoi(row[0])
		if err != nil || id < 0 || id >= len(r.Points) {
			t.Fatalf("packet %d: interface %q of %d", i+1, row[0], len(r.Points))
		}
		perIface[id]++
		pt := r.Points[id].Point
		if name, desc := capture.InterfaceName(pt), capture.InterfaceDescription(pt); row[1] != name || row[2] != desc {
			t.Errorf("packet %d: interface %q (%q), want %q (%q)", i+1, row[1], row[2], name, desc)
		}
		run, err := checkPacketComment(row, pt)
		if err != nil {
			t.Errorf("packet %d at %s: %v", i+1, pt.ID, err)
		}
		runs[run] = true
	}
	if len(runs) != 1 {
		t.Errorf("got packets of runs %v, want one run", runs)
	}

	// What the file can be compared with. A segment's seen counts the
	// probes observed at both its ends; a probe observed at a step was
	// observed at the step before it, as long as no capture dropped
	// packets (asserted below). So the packets a point saw in one
	// direction are the seen of the segment that arrives at that step:
	// for requests the request segment ending at the point (at p0, where
	// none arrives: the probes sent that the pod's stack did not lose),
	// for replies the reply segment ending there (at the last point: the
	// turnaround segment, from its request to its reply). Segments
	// leaving a step would undercount by the probes lost right after it.
	// The capture's own counters give the same figure for any run:
	// accepted by the filter, minus the ring's drops and what did not
	// decode, is what reached the sink and so the file.
	for i, p := range r.Points {
		if p.Capture == nil || p.Capture.Drops != 0 {
			t.Fatalf("point %s: capture %+v, want counters and no drops", p.ID, p.Capture)
		}
		want := arriving(t, r, i, false) + arriving(t, r, i, true)
		if perIface[i] != want {
			t.Errorf("interface %d (%s): %d packets in the file, the report's segments saw %d there", i, p.ID, perIface[i], want)
		}
		if got := uint64(perIface[i]); got != p.Capture.Packets-p.Capture.Drops-uint64(p.Capture.Undecodable) {
			t.Errorf("interface %d (%s): %d packets in the file, the capture counted %+v", i, p.ID, got, *p.Capture)
		}
	}
	t.Logf("%d probes, %d answered; packets per interface %v; stack loss %+v; segments %+v", r.Probes.Sent, r.Probes.Received, perIface, r.Stack, r.Segments)
	isbs := tsharktest.Statistics(t, tshark, file)
	if len(isbs) != len(r.Points) {
		t.Fatalf("tshark found %d statistics blocks, want one per point (%d)", len(isbs), len(r.Points))
	}
	for i, isb := range isbs {
		c := r.Points[i].Capture
		want := tsharktest.ISB{Interface: strconv.Itoa(i), Received: strconv.FormatUint(c.Packets, 10), Dropped: strconv.FormatUint(c.Drops, 10), Delivered: strconv.Itoa(perIface[i])}
		if isb.Comment = ""; isb != want {
			t.Errorf("statistics block %d: got %+v, want %+v (the report's points[%d].capture)", i, isb, want, i)
		}
	}

	checkReplay(t, file, r)
}

// arriving returns the seen of the segment that arrives at point i's
// request or reply step (see TestPrivilegedPcapMatchesReport).
func arriving(t *testing.T, r pcapReport, i int, reply bool) int {
	t.Helper()
	id, last := r.Points[i].ID, len(r.Points)-1
	if !reply && i == 0 {
		return r.Probes.Sent - r.Stack.Request
	}
	for _, s := range r.Segments {
		switch {
		case !reply && s.Direction == report.DirRequest && s.To == id && s.From != id,
			reply && i == last && s.From == id && s.To == id,
			reply && i < last && s.Direction == report.DirReply && s.To == id && s.From == r.Points[i+1].ID:
			return s.Seen
		}
	}
	t.Fatalf("no segment arrives at %s's %s step in %+v", id, map[bool]string{false: "request", true: "reply"}[reply], r.Segments)
	return 0
}

var commentRE = regexp.MustCompile(`^probe seq=(\d+) run=([0-9a-f]{16}) point=(p\d+) (request|reply) dir=(tx|rx) stamp=(skb|copy)$`)

// checkPacketComment checks a packet's comment against the packet (row:
// tshark's interface id, name, description, comment, flags, ICMP type and
// echo data) and the point of its interface; it returns the comment's run.
func checkPacketComment(row []string, pt topology.Point) (string, error) {
	m := commentRE.FindStringSubmatch(row[3])
	if m == nil {
		return "", fmt.Errorf("comment %q is not %s", row[3], commentRE)
	}
	seq, run, point, kind, dir := m[1], m[2], m[3], m[4], m[5]
	wantDir, wantType, wantFlags := pt.RequestDir, "8", map[topology.Dir]string{topology.TX: "0x00000002", topology.RX: "0x00000001"}
	if kind == "reply" {
		wantDir, wantType = pt.RequestDir.Reverse(), "0"
	}
	data, err := hex.DecodeString(row[6])
	if err != nil {
		return run, fmt.Errorf("echo data %q: %v", row[6], err)
	}
	tok, err := probe.ParsePayload(data)
	switch {
	case err != nil:
		return run, fmt.Errorf("the packet carries no probe token: %v", err)
	case point != pt.ID:
		return run, fmt.Errorf("comment %q names %s, the interface is %s's", row[3], point, pt.ID)
	case dir != string(wantDir) || row[4] != wantFlags[wantDir]:
		return run, fmt.Errorf("comment %q, flags %s: a %s crosses %s %s", row[3], row[4], kind, pt.ID, wantDir)
	case row[5] != wantType:
		return run, fmt.Errorf("comment %q on ICMP type %s", row[3], row[5])
	case seq != strconv.FormatUint(uint64(tok.Seq), 10) || run != fmt.Sprintf("%016x", tok.RunID):
		return run, fmt.Errorf("comment %q, but the packet's token is seq %d run %016x", row[3], tok.Seq, tok.RunID)
	}
	return run, nil
}

// checkReplay reads the file again with gopacket (capture.ReadPcapNG) and
// feeds it to a report.Accumulator for the report's path: the segments'
// seen counts come out as the run's. The probe records (not in a pcapng)
// are rebuilt from the packets: one per probe sent, answered when its
// reply reached the pod's interface; seen does not depend on more.
func checkReplay(t *testing.T, file string, r pcapReport) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	obs, err := capture.ReadPcapNG(f)
	if err != nil {
		t.Fatal(err)
	}
	path := &topology.Path{}
	for _, p := range r.Points {
		path.Points = append(path.Points, p.Point)
	}
	path.Source.NetNS = path.Points[0].NetNS
	tok, err := probe.ParsePayload(obs[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := report.NewAccumulator(path, []report.ProbeSource{{RunID: tok.RunID}})
	if err != nil {
		t.Fatal(err)
	}
	sent, answered := map[uint32]time.Time{}, map[uint32]time.Time{}
	for _, o := range obs {
		acc.Add(o)
		p, _ := probe.ParsePayload(o.Payload)
		switch {
		case o.Point == path.Points[0].ID && o.IsRequest():
			sent[p.Seq] = o.At
		case o.Point == path.Points[0].ID && o.IsReply():
			answered[p.Seq] = o.At
		}
	}
	res := &probe.Result{RunID: tok.RunID}
	for seq := range uint32(r.Probes.Sent) {
		at := sent[seq]
		p := probe.Probe{Seq: seq, SentAt: at, ReceivedAt: answered[seq], Deadline: at.Add(time.Second)}
		acc.AddProbe(0, p)
		res.Sent++
		if !p.ReceivedAt.IsZero() {
			res.Answered++
		}
	}
	again, err := acc.Result(report.Recorded{Probes: []*probe.Result{res}})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Segments) != len(r.Segments) {
		t.Fatalf("replayed: %d segments, the run had %d", len(again.Segments), len(r.Segments))
	}
	for i, s := range again.Segments {
		want := r.Segments[i]
		if s.From != want.From || s.To != want.To || s.Direction != want.Direction || s.Seen != want.Seen {
			t.Errorf("segment %d: replayed %s->%s %s seen %d, the run had %s->%s %s seen %d", i, s.From, s.To, s.Direction, s.Seen, want.From, want.To, want.Direction, want.Seen)
		}
	}
}

// TestPrivilegedPcapBadPath: a --pcap that cannot be written is a
// one-line usage error found before anything is sent, and leaves nothing
// behind; so is --pcap -, as stdout carries the report.
func TestPrivilegedPcapBadPath(t *testing.T) {
	l := labtest.New(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	for _, path := range []string{dir, filepath.Join(dir, "missing", "hops.pcapng"), "/proc/hops.pcapng", "-"} {
		t.Run(path, func(t *testing.T) {
			before := echoRequestsSent(t, l.Nodes[0].Pod.NS)
			args := append([]string{"trace", "--count", "3", "--interval", "10ms", "--out", report, "--pcap", path}, l.TraceArgs()...)
			code, stdout, stderr := runCLI(t, args...)
			if code != cli.ExitUsage || !strings.HasPrefix(stderr, "cnitrace: error: --pcap "+path+": ") || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit 2 and one line naming --pcap %s", code, stdout, stderr, path)
			}
			if sent := echoRequestsSent(t, l.Nodes[0].Pod.NS) - before; sent != 0 {
				t.Errorf("%d echo requests left the pod before the bad --pcap was reported, want none", sent)
			}
		})
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("the directory holds %v, want nothing", got)
	}
}

// TestPrivilegedPcapFailedRunLeavesNothing: a trace that fails after the
// --pcap file was opened leaves no file, and a file it would have
// replaced keeps what it held: when discovery fails (before the capture)
// and when the report cannot be written (after the whole pcapng was).
func TestPrivilegedPcapFailedRunLeavesNothing(t *testing.T) {
	l := labtest.New(t)
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := unix.Mknod(full, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))); err != nil {
		t.Skipf("skipping: mknod a full device: %v", err)
	}
	old := filepath.Join(dir, "old.pcapng")
	if err := os.WriteFile(old, []byte("what was here"), 0o644); err != nil {
		t.Fatal(err)
	}
	n1 := l.Nodes[0]
	unroutable := []string{"trace", "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", "10.253.0.1"}
	reportFails := append([]string{"trace", "--count", "3", "--interval", "10ms", "--out", full}, l.TraceArgs()...)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"discovery fails", unroutable, "10.253.0.1"},
		{"the report cannot be written", reportFails, "no space left on device"},
	} {
		for _, pcap := range []string{filepath.Join(dir, "new.pcapng"), old} {
			t.Run(tt.name+"/"+filepath.Base(pcap), func(t *testing.T) {
				code, _, stderr := runCLI(t, append(tt.args, "--pcap", pcap)...)
				if code != cli.ExitFailure || !strings.Contains(stderr, tt.want) {
					t.Errorf("got exit %d, stderr %q; want exit 1 saying %q", code, stderr, tt.want)
				}
				if got := dirNames(t, dir); !slices.Equal(got, []string{"full", "old.pcapng"}) {
					t.Errorf("the directory holds %v, want only the device and old.pcapng", got)
				}
				if b, err := os.ReadFile(old); err != nil || string(b) != "what was here" {
					t.Errorf("old.pcapng holds %q (%v), want what it held", b, err)
				}
			})
		}
	}
}
