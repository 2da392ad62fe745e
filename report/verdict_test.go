package report

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
)

func TestVerdict(t *testing.T) {
	jitterOn := func(seg int) func(seq, s int) time.Duration {
		return func(seq, s int) time.Duration {
			if s != seg {
				return 0
			}
			return time.Duration(seq%5) * 4 * time.Microsecond
		}
	}
	tests := []struct {
		name  string
		rn    run
		want  Verdict // Text is a prefix
		share float64 // want at least
	}{
		{
			name: "jitter in request forwarding",
			rn:   run{n: 20, jitter: jitterOn(segBridgeVXLAN)},
			want: Verdict{Class: ClassForwarding, From: "p2", To: "p3", Direction: DirRequest, Basis: BasisExcess,
				Text: "100% of the latency above the fastest probe (p50 +8.0 us) is in forwarding between cni0@net:[4026531840] and flannel.1@net:[4026531840] (request)"},
			share: 1,
		},
		{
			name: "jitter in reply ingress",
			rn:   run{n: 20, jitter: jitterOn(segIngress)},
			want: Verdict{Class: ClassIngress, From: "p1", To: "p0", Direction: DirReply, Basis: BasisExcess,
				Text: "100% of the latency above the fastest probe"},
			share: 1,
		},
		{
			name: "jitter in a merged segment names the measured span",
			rn:   run{n: 20, jitter: jitterOn(segBridgeVXLAN), inherit: map[int]bool{segVethBridge: true}},
			want: Verdict{Class: ClassForwarding, From: "p2", To: "p3", Direction: DirRequest, Basis: BasisExcess,
				Text: "100% of the latency above the fastest probe (p50 +8.0 us) is in forwarding between veth3f2a9c1d@net:[4026531840] and flannel.1"},
			share: 1,
		},
		{
			name: "all probes equal falls back to the median",
			rn:   run{n: 20},
			want: Verdict{Class: ClassNetwork, From: "p4", To: "p4", Direction: DirRequest, Basis: BasisMedian,
				Text: "the largest share of the median RTT (52%) is network beyond eth0@net:[4026531840] (out and back: wire, remote node, remote pod)"},
			share: 0.5,
		},
		{
			name: "one complete probe falls back to the median",
			rn:   run{n: 1, jitter: jitterOn(segBridgeVXLAN)},
			want: Verdict{Class: ClassNetwork, Basis: BasisMedian, From: "p4", To: "p4", Direction: DirRequest,
				Text: "the largest share of the median RTT"},
			share: 0.5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.delays = designDelays()
			v := tt.rn.correlate(t).Verdict
			if !strings.HasPrefix(v.Text, tt.want.Text) {
				t.Errorf("got text %q, want it to start with %q", v.Text, tt.want.Text)
			}
			if v.Class != tt.want.Class || v.From != tt.want.From || v.To != tt.want.To ||
				v.Direction != tt.want.Direction || v.Basis != tt.want.Basis {
				t.Errorf("got %+v, want %+v", v, tt.want)
			}
			if v.Share < tt.share || v.Share > 1 {
				t.Errorf("got share %.2f, want between %.2f and 1", v.Share, tt.share)
			}
			if v.Loss != nil {
				t.Errorf("got loss %+v, want none", v.Loss)
			}
		})
	}
}

// TestVerdictSplitsExcess puts a third of the extra latency in the network
// and two thirds in request forwarding.
func TestVerdictSplitsExcess(t *testing.T) {
	jitter := func(seq, s int) time.Duration {
		switch s {
		case segNetwork:
			return time.Duration(seq) * time.Microsecond
		case segVXLANUplink:
			return time.Duration(2*seq) * time.Microsecond
		}
		return 0
	}
	v := run{n: 10, delays: designDelays(), jitter: jitter}.correlate(t).Verdict
	if v.From != "p3" || v.To != "p4" || v.Share != 0.67 || v.Basis != BasisExcess {
		t.Errorf("got %s->%s share %.2f basis %s, want p3->p4 share 0.67 basis excess", v.From, v.To, v.Share, v.Basis)
	}
}

func TestVerdictLoss(t *testing.T) {
	tests := []struct {
		name   string
		lostIn map[int]int
		want   Loss
		text   string
	}{
		{"one segment", map[int]int{1: segNetwork, 4: segNetwork, 7: segNetwork},
			Loss{From: "p4", To: "p4", Direction: DirRequest, Class: ClassNetwork, Lost: 3},
			"3 of 50 probes (6%) lost in network beyond eth0@net:[4026531840] (out and back: wire, remote node, remote pod); the largest share"},
		{"most losses win", map[int]int{1: segVXLANUplink, 2: segBridgeVeth, 3: segBridgeVeth},
			Loss{From: "p2", To: "p1", Direction: DirReply, Class: ClassForwarding, Lost: 2},
			"2 of 50 probes (4%) lost in forwarding between cni0@net:[4026531840] and veth3f2a9c1d@net:[4026531840] (reply); "},
		{"one probe at the pod", map[int]int{1: segEgress},
			Loss{From: "p0", To: "p1", Direction: DirRequest, Class: ClassEgress, Lost: 1},
			"1 of 50 probes (2%) lost in egress between eth0@net:[4026532301] and veth3f2a9c1d@net:[4026531840] (request); "},
		// lostIn -1: never seen at any point; numSegs: seen back at the
		// pod's interface, never read.
		{"the pod's send path", map[int]int{1: -1, 2: -1, 3: segNetwork},
			Loss{From: PointSocket, To: "p0", Direction: DirRequest, Class: ClassEgress, Lost: 2},
			"2 of 50 probes (4%) lost in egress the source's own stack, between the probe socket and eth0@net:[4026532301] (request); "},
		{"the pod's receive path", map[int]int{1: numSegs, 2: numSegs},
			Loss{From: "p0", To: PointSocket, Direction: DirReply, Class: ClassIngress, Lost: 2},
			"2 of 50 probes (4%) lost in ingress the source's own stack, between eth0@net:[4026532301] and the probe socket (reply); "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := run{n: 50, delays: designDelays(), lostIn: tt.lostIn}.correlate(t).Verdict
			if v.Loss == nil || *v.Loss != tt.want {
				t.Errorf("got loss %+v, want %+v", v.Loss, tt.want)
			}
			if !strings.HasPrefix(v.Text, tt.text) {
				t.Errorf("got text %q, want it to start with %q", v.Text, tt.text)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		frac float64
		want string
	}{
		{0.06, "6"}, {0.005, "0.5"}, {1.0 / 3, "33"}, {0.62, "62"}, {1, "100"}, {0.0125, "1.2"}, {0, "0"},
	}
	for _, tt := range tests {
		if got := percent(tt.frac); got != tt.want {
			t.Errorf("percent(%v): got %q, want %q", tt.frac, got, tt.want)
		}
	}
}

func TestRank(t *testing.T) {
	s := us(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	tests := []struct {
		p    int
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {1, 1}, {100, 10}}
	for _, tt := range tests {
		if got := micros(rank(s, tt.p)); got != tt.want {
			t.Errorf("rank %d: got %.1f, want %.1f", tt.p, got, tt.want)
		}
	}
}

// TestStackLoss counts the probes lost outside every capture point by
// direction, and those the first point's capture may have missed as
// unknown, never as lost.
func TestStackLoss(t *testing.T) {
	tests := []struct {
		name    string
		lostIn  map[int]int
		refused map[int]error
		stats   []capture.PointStats
		want    StackLoss
		text    string
	}{
		{"none", nil, nil, nil, StackLoss{}, ""},
		{"send and receive paths", map[int]int{0: -1, 5: numSegs, 6: numSegs, 7: segNetwork}, nil, nil,
			StackLoss{Request: 1, Reply: 2},
			"  source stack: 1 requests lost between the probe socket and p0 eth0 (send path), 2 replies between p0 eth0 and the probe socket (receive path)\n"},
		{"first capture dropped", map[int]int{0: -1}, nil, []capture.PointStats{{Point: "p0", Drops: 3}},
			StackLoss{Unknown: 1}, ", 1 not located (the capture at p0 eth0 dropped packets)\n"},
		// A refused send is known lost even where the capture dropped.
		{"refused at send", map[int]int{0: -1, 3: -1}, map[int]error{3: syscall.EPERM}, []capture.PointStats{{Point: "p0", Drops: 3}},
			StackLoss{Request: 1, Refused: 1, RefusedError: "operation not permitted", Unknown: 1},
			"(send path: 1 refused by the kernel at send (operation not permitted))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run{n: 20, delays: designDelays(), lostIn: tt.lostIn, refused: tt.refused, stats: tt.stats}.correlate(t)
			if r.Stack != tt.want {
				t.Errorf("got stack loss %+v, want %+v", r.Stack, tt.want)
			}
			inSegments, segLost := 0, 0
			for _, seg := range tt.lostIn {
				if seg >= 0 && seg < numSegs {
					inSegments++
				}
			}
			for _, s := range r.Segments {
				segLost += s.Lost
			}
			if segLost != inSegments {
				t.Errorf("segments lost %d probes, want %d: stack losses must not be counted there", segLost, inSegments)
			}
			var b strings.Builder
			if err := Render(&b, r, FormatText); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(b.String(), "source stack:"); got != (tt.text != "") {
				t.Errorf("text mentions the source stack: %v, want %v:\n%s", got, tt.text != "", b.String())
			}
			if tt.text != "" && !strings.Contains(b.String(), tt.text) {
				t.Errorf("got text:\n%s\nwant it to contain %q", b.String(), tt.text)
			}
		})
	}
}

// TestNetworkBeyond: what lies beyond the uplink is a remote node and its
// pod only when the path crosses an overlay device.
func TestNetworkBeyond(t *testing.T) {
	overlay := run{n: 10, delays: designDelays()}.correlate(t)
	if got := spanText(overlay, "p4", "p4", ClassNetwork, DirRequest); !strings.Contains(got, "remote node, remote pod") {
		t.Errorf("across VXLAN: %q", got)
	}
	plain := &Result{Points: []Point{{ID: "p0", Kind: "pod"}, {ID: "p1", Kind: "veth"}, {ID: "p2", Interface: "wan0", Kind: "uplink"}}}
	if got := spanText(plain, "p2", "p2", ClassNetwork, DirRequest); !strings.Contains(got, "wire and the remote host") {
		t.Errorf("without an overlay: %q", got)
	}
}
