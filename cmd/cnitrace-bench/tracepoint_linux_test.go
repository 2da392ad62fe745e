//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// perfLines writes perf script's lines for n round trips across two lab
// nodes, 10 ms apart: node 1's events, then node 2's, which carry the
// same device names but its own veth, all of one skb per direction;
// each request's skb is reused by the next probe's.
func perfLines(n int) string {
	var b strings.Builder
	ev := func(at int64, tx bool, dev, skb string) {
		name := "net:netif_receive_skb:"
		if tx {
			name = "net:net_dev_start_xmit:"
		}
		fmt.Fprintf(&b, "%d.%09d: %s dev=%s queue_mapping=0 skbaddr=%s len=98\n", at/1e9, at%1e9, name, dev, skb)
	}
	for i := range n {
		t := int64(36748e9) + int64(i)*10e6 // us steps below
		us := func(u int64) int64 { return t + u*1000 }
		q, r := "0xffff8881a3580200", fmt.Sprintf("0xffff8881a35806%02x", i)
		ev(us(0), true, "eth0", q) // pod 1
		ev(us(5), false, "vethaaaa", q)
		ev(us(15), false, "cni0", q)
		ev(us(35), true, "flannel.1", q) // bridge -> vxlan: 20
		ev(us(48), true, "eth0", q)      // uplink TX
		ev(us(60), false, "eth0", q)     // node 2
		ev(us(70), false, "flannel.1", q)
		ev(us(75), true, "cni0", q)
		ev(us(78), true, "vethbbbb", q)
		ev(us(80), false, "eth0", q) // pod 2
		ev(us(85), true, "eth0", r)  // pod 2's reply
		ev(us(88), false, "vethbbbb", r)
		ev(us(92), false, "cni0", r)
		ev(us(96), true, "flannel.1", r)
		ev(us(100), true, "eth0", r)
		ev(us(108), false, "eth0", r) // node 1's uplink RX: network 108 - 48 = 60
		ev(us(118), false, "flannel.1", r)
		ev(us(125), true, "cni0", r) // vxlan -> bridge: 7
		ev(us(128), true, "vethaaaa", r)
		ev(us(131), false, "eth0", r) // pod 1
		fmt.Fprintf(&b, "%d.%09d: sched:sched_switch: prev_comm=x\n", t/1e9, t%1e9)
	}
	return b.String()
}

// The reference times node 1's segments from its own events only, by the
// host veth and the order around it.
func TestKernelRefSpans(t *testing.T) {
	devs := refDevs{"pod": "eth0", "veth": "vethaaaa", "bridge": "cni0", "vxlan": "flannel.1", "uplink": "eth0"}
	points := map[string]string{"p0": "pod", "p1": "veth", "p2": "bridge", "p3": "vxlan", "p4": "uplink"}
	req, rep := refSpans(parseRefEvents(strings.NewReader(perfLines(12))), devs)
	if len(req) != 12 || len(rep) != 12 {
		t.Fatalf("got %d requests and %d replies, want 12 and 12", len(req), len(rep))
	}
	got := refMedians(req, rep, points)
	want := map[string]float64{
		"request p0->p1": 5, "request p1->p2": 10, "request p2->p3": 20, "request p3->p4": 13, "request p4->p4": 60,
		"reply p4->p3": 10, "reply p3->p2": 7, "reply p2->p1": 3, "reply p1->p0": 3,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
			t.Errorf("%s: got %v (%v), want %v us", k, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d segments, want %d: %v", len(got), len(want), got)
	}
	if m := refMedians(req[:minPaired-1], rep[:minPaired-1], points); len(m) != 0 {
		t.Errorf("%d crossings gave figures %v, want none", minPaired-1, m)
	}
}

// Other segments are judged on cnitrace's move minus the kernel's; the
// raw move is kept beside it, and a row the reference mostly missed is
// not judged.
func TestJudgeOthers(t *testing.T) {
	raw := map[string][]float64{"request p4->p4": {14, 16, 15}, "reply p3->p2": {1, 2, 1}}
	others := map[string][]float64{"request p4->p4": {1, 2, 0}, "reply p3->p2": {0, 1, -1}}
	refs := map[string][]float64{"request p4->p4": {13, 14, 15}, "reply p3->p2": {1, 1, 2}}
	var row accuracyRow
	row.judgeOthers(raw, others, refs)
	if row.OtherRawWorst != "request p4->p4" || row.OtherRawMaxUS != 15 || row.OtherRefMoveUS != 14 {
		t.Errorf("raw worst %s %.1f us (reference %.1f), want request p4->p4 15 us (14)", row.OtherRawWorst, row.OtherRawMaxUS, row.OtherRefMoveUS)
	}
	if row.OtherWorst != "request p4->p4" || row.OtherMaxUS != 1 || !row.OtherVerdict.Met() {
		t.Errorf("judged worst %s %.1f us, %s; want request p4->p4 1 us, met", row.OtherWorst, row.OtherMaxUS, row.OtherVerdict)
	}
	row = accuracyRow{}
	row.judgeOthers(raw, map[string][]float64{"reply p3->p2": {0, 1}}, nil)
	if row.OtherVerdict.Judged() {
		t.Errorf("2 of 6 moves with a reference: %s, want not judged", row.OtherVerdict)
	}
}
