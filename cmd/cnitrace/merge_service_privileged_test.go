package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedMergeService: the lab's Service (kube-proxy's iptables
// mode) spreads TCP SYNs from node 1's pod over its two endpoints, node
// 2's pod and its sibling; a listener runs for each. Merged, each probe's
// far half comes from its backend's listener, though both listeners
// capture node 2's uplink, overlay and bridge: one report per backend,
// every probe matched and seen at every segment, the reports' probes
// adding up to the run's and to the backends the source's report counted
// after the DNAT, no disagreement.
func TestPrivilegedMergeService(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Service: true})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	eps := l.ServiceEndpoints()
	lp, ls := startListenIn(t, l, n2.Pod), startListenIn(t, l, n2.Sibling)
	const n = 60
	tf := traceForMergeTo(t, l, n, 20*time.Millisecond, "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath,
		"--to", l.Service.String(), "--proto", "tcp", "--port", strconv.Itoa(int(lab.ServicePorts[0].Port)))
	pf, sf := lp.stop(t), ls.stop(t)

	code, stdout, stderr := runCLI(t, "merge", "--format", "json", tf, pf, sf)
	if code != 0 {
		t.Fatalf("merge: exit code %d; stderr:\n%s", code, stderr)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("merge of two listeners: want a JSON array: %v\n%.500s", err, stdout)
	}
	if len(raw) != len(eps) {
		t.Fatalf("%d reports, want one per endpoint (%d)", len(raw), len(eps))
	}
	total := 0
	for i, b := range raw {
		r, err := report.Decode(bytes.NewReader(b))
		if err != nil || r.Merge == nil {
			t.Fatalf("report %d: %v", i, err)
		}
		m := r.Merge
		total += m.Probes
		if got := m.Nodes[1].Pod; got != eps[i].String() {
			t.Errorf("report %d is of pod %s, want %s", i, got, eps[i])
		}
		if m.Probes == 0 || m.Matched != m.Probes || len(m.Disagreements) != 0 || m.Clock.Error != "" {
			t.Errorf("report %d (%s): %d of %d matched, clock %+v, disagreements %+v", i, eps[i], m.Matched, m.Probes, m.Clock, m.Disagreements)
		}
		counted := -1 // the source's count after the DNAT
		for _, be := range r.Backends.Seen {
			if be.Addr == eps[i].String() {
				counted = be.Probes
			}
		}
		if counted != m.Probes {
			t.Errorf("report %d: %d probes, but the source saw %d go to %s (%+v)", i, m.Probes, counted, eps[i], r.Backends)
		}
		nodes := map[byte]int{}
		for _, s := range r.Segments {
			if s.Seen != m.Probes || s.Lost != 0 {
				t.Errorf("report %d: segment %s->%s (%s %s): seen %d lost %d, want %d and 0", i, s.From, s.To, s.Direction, s.Class, s.Seen, s.Lost, m.Probes)
			}
			nodes[s.From[0]]++
		}
		if want := m.Nodes[1].ID[0]; nodes['a'] < 8 || nodes[want] < 8 {
			t.Errorf("report %d: segments from node a: %d, from node %c: %d; want every one of both", i, nodes['a'], want, nodes[want])
		}
		if len(m.Targets) != 2 {
			t.Errorf("report %d: targets %+v, want both endpoints", i, m.Targets)
		}
		t.Logf("report %d: %s, %d probes, wire rtt p50 %.1f us, offset bound +/-%.1f us", i, eps[i], m.Probes, m.WireRTT.P50, m.Clock.BoundUS)
	}
	if total != n {
		t.Errorf("the reports hold %d probes, want the %d sent", total, n)
	}
	// HTML is one page: refused for two reports, one listen file at a time.
	if code, _, stderr := runCLI(t, "merge", "--format", "html", tf, pf, sf); code != cli.ExitUsage || !strings.Contains(stderr, "one listen file at a time") {
		t.Errorf("merge --format html of two listeners: exit code %d, stderr %q; want %d, saying to merge one at a time", code, stderr, cli.ExitUsage)
	}
	code, page, stderr := runCLI(t, "merge", "--format", "html", tf, sf)
	if code != 0 || !strings.Contains(page, "<html") {
		t.Errorf("merge --format html of the sibling's listener: exit code %d; stderr:\n%s", code, stderr)
	}
}
