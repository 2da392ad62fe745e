//go:build linux

package main

import (
	"encoding/json"
	"math"
	"testing"
)

// A report's stamps give each probe's span across a segment: the network
// segment runs from the uplink's request TX to its reply RX.
func TestSpans(t *testing.T) {
	var r report
	js := `{"stamps": {"steps": [{"point": "p0", "dir": "tx"}, {"point": "p4", "dir": "tx"}, {"point": "p4", "dir": "rx", "reply": true}, {"point": "p0", "dir": "rx", "reply": true}],
		"runs": [{"run_id": "201e98847af36101", "probes": [{"seq": 1, "at": [1000, 5000, 9500, 12000]}, {"seq": 2, "at": [1000, 5000, 0, 12000]}]}]}}`
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	got := r.spans(segment{From: "p4", To: "p4", Direction: "request"})
	want := probeKey{0x201e98847af36101, 1}
	if len(got) != 1 || got[want] != 4.5 {
		t.Errorf("network spans: got %v, want only %v: 4.5 us", got, want)
	}
	if got := r.spans(segment{From: "p4", To: "p0", Direction: "reply"}); len(got) != 1 || got[want] != 2.5 {
		t.Errorf("reply p4->p0: got %v, want seq 1 alone (seq 2 not seen at p4 rx), 2.5 us", got)
	}
	if got := r.spans(segment{From: "p0", To: "p0", Direction: "request"}); got != nil {
		t.Errorf("not consecutive steps: got %v, want nil", got)
	}
	if got := (report{}).spans(segment{From: "p4", To: "p4", Direction: "request"}); got != nil {
		t.Errorf("no stamps: got %v, want nil", got)
	}
}

// The error is cnitrace's span minus the injector's hold, probe by probe:
// jitter of the injector, in both, cancels; only probes both saw count.
func TestPairRound(t *testing.T) {
	const n = 30
	bs, bh, ws, wh := map[probeKey]float64{}, map[probeKey]float64{}, map[probeKey]float64{}, map[probeKey]float64{}
	for i := range n {
		jitter := float64(i%7) * 40 // the injector's lateness, up to 240 us
		bk, wk := probeKey{1, uint32(i)}, probeKey{2, uint32(i)}
		bh[bk], bs[bk] = 20+jitter, 20+jitter+100       // the wire's 100 us beside the hold
		wh[wk], ws[wk] = 1000+jitter, 1000+jitter+100+3 // cnitrace 3 us long with the delay
	}
	ws[probeKey{2, 999}] = 1e6 // a probe the injector did not hold: left out
	p, ok := pairRound(bs, bh, ws, wh)
	if !ok || p.Probes != n || math.Abs(p.Error-3) > 1e-9 || math.Abs(p.Truth-980) > 1e-9 || math.Abs(p.Recovered-983) > 1e-9 {
		t.Errorf("got %+v, %v; want %d probes, truth 980, recovered 983, error 3", p, ok, n)
	}
	if _, ok := pairRound(bs, bh, ws, map[probeKey]float64{}); ok {
		t.Errorf("no holds with the delay: want no figure")
	}
}
