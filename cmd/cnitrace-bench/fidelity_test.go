//go:build linux

package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

// TestSameCaptures: the same-captures ratio is cnitrace's rtt_ping_us p50
// over ping's under the tcpdumps, round by round; the floor is ping under
// them over the bare ping; a tcpdump that missed ping's packets makes the
// row not judged whatever the figures say.
func TestSameCaptures(t *testing.T) {
	pingStyle := []float64{200, 210, 190, 205, 195}
	bare := []float64{150, 160, 140, 155, 145}
	under := []float64{198, 206, 192, 204, 197}
	sc := newSameCaptures(pingStyle, bare, under, "")
	if len(sc.PerRound) != 5 || math.Abs(sc.PerRound[0]-200.0/198) > 1e-9 {
		t.Errorf("per-round ratios %v, want 200/198 first of 5", sc.PerRound)
	}
	if want := 198.0 / 150; math.Abs(sc.TapFloor-want) > 1e-9 {
		t.Errorf("tap floor %v, want %v (median under / median bare)", sc.TapFloor, want)
	}
	if sc.Verdict != met {
		t.Errorf("ratios within 1%% of 1: verdict %q, want met", sc.Verdict)
	}
	if far := newSameCaptures(pingStyle, bare, bare, ""); far.Verdict != notMet {
		t.Errorf("cnitrace 1.33x ping: verdict %q, want NOT met", far.Verdict)
	}
	if missed := newSameCaptures(pingStyle, bare, under, "tcpdump on cni0 saw 3 of 100 packets"); missed.Verdict.Judged() {
		t.Errorf("a tcpdump that missed ping's packets: verdict %q, want not judged", missed.Verdict)
	}
}

// TestObserverOverTcpdumps: cnitrace's effect is judged against the
// tcpdumps' at most observerOverTcpdumps above; an effect under theirs
// is met however far under.
func TestObserverOverTcpdumps(t *testing.T) {
	for _, tc := range []struct {
		over []float64
		want verdict
	}{
		{[]float64{-1, 0.5, 1, -0.5, 0}, met},
		{[]float64{-30, -25, -28, -31, -26}, met},
		{[]float64{9, 10, 11, 10, 9}, notMet},
	} {
		if got := judge(meanCI(tc.over), atMost(observerOverTcpdumps)); got != tc.want {
			t.Errorf("over %v: verdict %q, want %q", tc.over, got, tc.want)
		}
	}
}

// A concurrent round keeps the pings sent while the trace probed: ping's
// -D stamp is when it printed the reply, so the echo left an RTT earlier.
func TestPingsSentWithin(t *testing.T) {
	out := []byte(`PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.
[1796214246.100200] 64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.200 ms
[1796214246.110150] 64 bytes from 10.244.2.2: icmp_seq=2 ttl=62 time=0.150 ms
[1796214246.120300] 64 bytes from 10.244.2.2: icmp_seq=3 ttl=62 time=0.300 ms
[1796214246.130100] 64 bytes from 10.244.2.2: icmp_seq=4 ttl=62 time=0.100 ms

--- 10.244.2.2 ping statistics ---
4 packets transmitted, 4 received, 0% packet loss, time 30ms
`)
	var p pingRun
	p.readReplies(out)
	if len(p.rtts) != 4 || len(p.sent) != 4 {
		t.Fatalf("read %d RTTs and %d send times, want 4 and 4", len(p.rtts), len(p.sent))
	}
	// Echoes 2 and 3 left at .110000 and .120000.
	from, to := time.Unix(1796214246, 105e6), time.Unix(1796214246, 120e6)
	if got := pingsSentWithin(p, from, to); !slices.Equal(got, []float64{150, 300}) {
		t.Errorf("pings sent within [.105, .120] s: %v, want [150 300]", got)
	}
	var plain pingRun
	plain.readReplies([]byte("64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.250 ms\n"))
	if !slices.Equal(plain.rtts, []float64{250}) || len(plain.sent) != 0 {
		t.Errorf("without -D: RTTs %v, send times %v; want [250] and none", plain.rtts, plain.sent)
	}
}

func TestSendSpan(t *testing.T) {
	var r report
	if _, _, ok := r.sendSpan(); ok {
		t.Error("a report without stamps has a send span")
	}
	r.Stamps = &stamps{Runs: []runStamps{{Probes: []probeStamps{
		{At: []int64{0, 5}}, {At: []int64{300, 310}}, {At: []int64{100, 120}}, {At: []int64{200, 0}},
	}}}}
	first, last, ok := r.sendSpan()
	if !ok || first.UnixNano() != 100 || last.UnixNano() != 300 {
		t.Errorf("send span %d-%d (%v), want 100-300: the first step's stamps, unseen ones left out", first.UnixNano(), last.UnixNano(), ok)
	}
}

func TestRatios(t *testing.T) {
	got := ratios([]float64{2, 9, 5}, []float64{4, 3})
	if len(got) != 2 || got[0] != 0.5 || got[1] != 3 {
		t.Errorf("ratios: got %v, want [0.5 3] (the shorter side's rounds)", got)
	}
}
