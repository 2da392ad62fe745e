package report

import (
	"strings"
	"testing"
	"time"
)

// TestVerdictStandingDelay: a segment every probe waits in (a queue kept
// full, a fixed delay) has a high floor, not a wide spread; the verdict
// names it by comparing its floor with the same points' the other way.
func TestVerdictStandingDelay(t *testing.T) {
	// upTo adds up to max to segment seg, varying with the sequence.
	upTo := func(seg int, max time.Duration) func(seq, s int) time.Duration {
		return func(seq, s int) time.Duration {
			if s != seg {
				return 0
			}
			return time.Duration(seq%10) * max / 9
		}
	}
	withDelay := func(seg int, d time.Duration) []time.Duration {
		ds := designDelays()
		ds[seg] += d
		return ds
	}
	tests := []struct {
		name    string
		rn      run
		want    Verdict // Text is a prefix
		floor   *Floor  // From, To, Direction, RefFrom, RefTo, RefDirection only
		contain string
	}{
		{
			name: "a queue every probe waits in, request forwarding",
			rn:   run{n: 40, delays: withDelay(segBridgeVXLAN, 30*time.Millisecond), jitter: upTo(segBridgeVXLAN, time.Millisecond)},
			want: Verdict{Class: ClassForwarding, From: "p2", To: "p3", Direction: DirRequest, Basis: BasisFloor,
				Text: "every probe spent at least 30.03 ms in forwarding between cni0@net:[4026531840] and flannel.1@net:[4026531840] (request), where the same points take 9.1 us the other way (flannel.1@net:[4026531840] to cni0@net:[4026531840], reply): a standing delay"},
			floor:   &Floor{From: "p2", To: "p3", Direction: DirRequest, RefFrom: "p3", RefTo: "p2", RefDirection: DirReply},
			contain: "; 100% of the latency above the fastest probe (p50 +444.4 us) is there too",
		},
		{
			name: "a fixed delay, reply forwarding, against an inherited other way",
			rn: run{n: 20, delays: withDelay(segBridgeVeth, 5*time.Millisecond),
				inherit: map[int]bool{segVethBridge: true}},
			want: Verdict{Class: ClassForwarding, From: "p2", To: "p1", Direction: DirReply, Basis: BasisFloor,
				Text: "every probe spent at least 5.00 ms in forwarding between cni0@net:[4026531840] and veth3f2a9c1d@net:[4026531840] (reply), where the same points take 25.8 us the other way (veth3f2a9c1d@net:[4026531840] to flannel.1@net:[4026531840], request)"},
			floor: &Floor{From: "p2", To: "p1", Direction: DirReply, RefFrom: "p1", RefTo: "p3", RefDirection: DirRequest},
		},
		{
			name: "a spread wider than the floor: the spread leads",
			rn:   run{n: 40, delays: withDelay(segBridgeVXLAN, 10*time.Millisecond), jitter: upTo(segBridgeVXLAN, 90*time.Millisecond)},
			want: Verdict{Class: ClassForwarding, From: "p2", To: "p3", Direction: DirRequest, Basis: BasisExcess,
				Text: "100% of the latency above the fastest probe (p50 +40000.0 us) is in forwarding between cni0@net:[4026531840] and flannel.1@net:[4026531840] (request); also, every probe spent at least 10.03 ms in forwarding"},
			floor: &Floor{From: "p2", To: "p3", Direction: DirRequest, RefFrom: "p3", RefTo: "p2", RefDirection: DirReply},
		},
		{
			name: "the node as measured: no standing delay",
			rn:   run{n: 20, delays: designDelays(), jitter: upTo(segBridgeVXLAN, 20*time.Microsecond)},
			want: Verdict{Class: ClassForwarding, From: "p2", To: "p3", Direction: DirRequest, Basis: BasisExcess,
				Text: "100% of the latency above the fastest probe"},
		},
		{
			name: "the turnaround has no other way",
			rn:   run{n: 20, delays: withDelay(segNetwork, 30*time.Millisecond)},
			want: Verdict{Class: ClassNetwork, From: "p4", To: "p4", Direction: DirRequest, Basis: BasisMedian,
				Text: "the largest share of the median RTT (100%) is network"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.rn.correlate(t).Verdict
			if !strings.HasPrefix(v.Text, tt.want.Text) || !strings.Contains(v.Text, tt.contain) {
				t.Errorf("got text %q, want it to start with %q and contain %q", v.Text, tt.want.Text, tt.contain)
			}
			if v.Class != tt.want.Class || v.From != tt.want.From || v.To != tt.want.To || v.Direction != tt.want.Direction || v.Basis != tt.want.Basis {
				t.Errorf("got %+v, want %+v", v, tt.want)
			}
			switch f := v.Floor; {
			case tt.floor == nil && f != nil:
				t.Errorf("got floor %+v, want none", *f)
			case tt.floor == nil:
			case f == nil:
				t.Errorf("got no floor, want %+v", *tt.floor)
			case f.From != tt.floor.From || f.To != tt.floor.To || f.Direction != tt.floor.Direction ||
				f.RefFrom != tt.floor.RefFrom || f.RefTo != tt.floor.RefTo || f.RefDirection != tt.floor.RefDirection:
				t.Errorf("got floor %+v, want %+v", *f, *tt.floor)
			case f.FloorUS <= f.ReferenceUS || f.Share < 0.5 || f.Share > 1:
				t.Errorf("floor %+v: want floor_us above reference_us and a share of at least half", *f)
			}
		})
	}
}
