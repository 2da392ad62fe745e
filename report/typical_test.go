package report

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestTypicalProbePicksTheMedian checks the choice: the median by path
// round trip over the probes seen at every step, the lowest sequence of
// those that took it.
func TestTypicalProbePicksTheMedian(t *testing.T) {
	network := func(us ...int) func(seq, seg int) time.Duration { // extra time in the network, per seq
		return func(seq, seg int) time.Duration {
			if seg != segNetwork {
				return 0
			}
			return time.Duration(us[seq]) * time.Microsecond
		}
	}
	tests := []struct {
		name string
		rn   run
		want uint32
	}{
		{"odd", run{n: 5, jitter: network(3, 1, 4, 1, 5)}, 0},
		{"even takes the lower middle", run{n: 4, jitter: network(4, 1, 3, 2)}, 3},
		{"ties take the lowest seq", run{n: 3, jitter: network(1, 1, 1)}, 0},
		{"ties at the median, not the first of the order", run{n: 5, jitter: network(2, 1, 2, 2, 1)}, 0},
		{"lost probes are no candidates", run{n: 5, jitter: network(1, 2, 3, 4, 5), lostIn: map[int]int{0: segNetwork, 1: segNetwork}}, 3},
		{"a step missed is no candidate", run{n: 3, jitter: network(1, 2, 3), missing: map[[2]int]bool{{1, 4}: true}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.delays = designDelays()
			r := tt.rn.correlate(t)
			if r.Typical == nil {
				t.Fatal("got no typical probe, want one")
			}
			if got := r.Typical.Seq; got != tt.want {
				t.Errorf("got typical probe %d, want %d", got, tt.want)
			}
		})
	}
}

// TestTypicalProbeSteps checks every step of the probe: its point,
// direction, offset from the first step, and the stamps inherited.
func TestTypicalProbeSteps(t *testing.T) {
	r := run{n: 3, delays: designDelays(), inherit: map[int]bool{segVethBridge: true, segUplinkVXLAN: true}}.correlate(t)
	want := []ProbeStep{
		{"p0", DirRequest, 0, false},
		{"p1", DirRequest, 5.4, false},
		{"p2", DirRequest, 5.4, true}, // cni0 RX carries the veth's stamp
		{"p3", DirRequest, 31.2, false},
		{"p4", DirRequest, 44.4, false},
		{"p4", DirReply, 109.4, false},
		{"p3", DirReply, 109.4, true}, // flannel.1 RX carries the uplink's
		{"p2", DirReply, 118.5, false},
		{"p1", DirReply, 120.1, false},
		{"p0", DirReply, 120.8, false},
	}
	if r.Typical == nil {
		t.Fatal("got no typical probe, want one")
	}
	if got := r.Typical.Steps; !reflect.DeepEqual(got, want) {
		t.Errorf("got steps\n%+v\nwant\n%+v", got, want)
	}
}

// TestTypicalProbeIsThePathMedian: with every probe seen everywhere and an
// odd count, the typical probe's round trip is rtt_path_us's p50.
func TestTypicalProbeIsThePathMedian(t *testing.T) {
	jitter := func(seq, seg int) time.Duration { return time.Duration(seq*37%23*(seg+1)) * 100 * time.Nanosecond }
	r := run{n: 21, delays: designDelays(), jitter: jitter}.correlate(t)
	steps := r.Typical.Steps
	if got, want := steps[len(steps)-1].OffsetUS, r.PathRTT.P50; got != want {
		t.Errorf("got the typical probe's round trip %.1f us, want rtt_path_us p50 %.1f us", got, want)
	}
}

func TestTypicalProbeNone(t *testing.T) {
	tests := []struct {
		name string
		rn   run
	}{
		{"every probe lost", run{n: 3, lostIn: map[int]int{0: segNetwork, 1: segEgress, 2: segIngress}}},
		{"a step missed by every probe", run{n: 2, missing: map[[2]int]bool{{0, 7}: true, {1, 2}: true}}},
		{"no probes", run{n: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.delays = designDelays()
			if got := tt.rn.correlate(t).Typical; got != nil {
				t.Errorf("got typical probe %+v, want none", got)
			}
		})
	}
}

// TestTypicalProbeJSON: the probe survives the JSON round trip whole, so
// a saved report renders the same waterfall again.
func TestTypicalProbeJSON(t *testing.T) {
	r := flannelResult(t)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if r.Typical == nil || !reflect.DeepEqual(back.Typical, r.Typical) {
		t.Errorf("got typical probe %+v after the round trip, want %+v", back.Typical, r.Typical)
	}
}
