package report

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

func TestCorrelatePerfect(t *testing.T) {
	r := run{n: 20, delays: designDelays()}.correlate(t)
	want := []struct{ from, to, dir, class string }{
		{"p0", "p1", DirRequest, ClassEgress},
		{"p1", "p2", DirRequest, ClassForwarding},
		{"p2", "p3", DirRequest, ClassForwarding},
		{"p3", "p4", DirRequest, ClassForwarding},
		{"p4", "p4", DirRequest, ClassNetwork},
		{"p4", "p3", DirReply, ClassForwarding},
		{"p3", "p2", DirReply, ClassForwarding},
		{"p2", "p1", DirReply, ClassForwarding},
		{"p1", "p0", DirReply, ClassIngress},
	}
	if got := len(r.Segments); got != len(want) {
		t.Fatalf("got %d segments, want %d", got, len(want))
	}
	for i, w := range want {
		s := r.Segments[i]
		if s.From != w.from || s.To != w.to || s.Direction != w.dir || s.Class != w.class {
			t.Errorf("segment %d: got %s->%s %s %s, want %s->%s %s %s", i, s.From, s.To, s.Direction, s.Class, w.from, w.to, w.dir, w.class)
		}
		if !s.Separable || s.Seen != 20 || s.Lost != 0 || s.MergedFrom != "" || s.Note != "" {
			t.Errorf("segment %d: got separable=%v seen=%d lost=%d merged_from=%q note=%q, want true 20 0 \"\" \"\"",
				i, s.Separable, s.Seen, s.Lost, s.MergedFrom, s.Note)
		}
		if s.US == nil {
			t.Errorf("segment %d: got no us, want p50 %.1f", i, micros(designDelays()[i]))
			continue
		}
		if got, want := s.US.P50, micros(designDelays()[i]); got != want {
			t.Errorf("segment %d: got p50 %.1f us, want %.1f us", i, got, want)
		}
	}
	if got, want := r.Probes, (ProbeCounts{Sent: 20, Received: 20}); got != want {
		t.Errorf("got probes %+v, want %+v", got, want)
	}
	// The probes were sent 20 us before the pod's interface saw them: ping's
	// RTT includes that, the path's does not.
	if r.RTT == nil || r.RTT.P50 != 146.1 || r.RTTSource != RTTCapture {
		t.Errorf("got rtt %+v from %q, want p50 146.1 from capture", r.RTT, r.RTTSource)
	}
	if r.PathRTT == nil || r.PathRTT.P50 != 126.1 {
		t.Errorf("got path rtt %+v, want p50 126.1", r.PathRTT)
	}
	if r.SchemaVersion != 1 || r.Target != "10.244.2.2" || r.Source.Addr != "10.244.1.2" || len(r.Points) != 5 {
		t.Errorf("got header %d %q %+v %d points, want 1 10.244.2.2 10.244.1.2 5 points", r.SchemaVersion, r.Target, r.Source, len(r.Points))
	}
}

// TestCorrelateInputIndependent shows that order, duplicates and foreign
// packets do not change the result (except the ignored count).
func TestCorrelateInputIndependent(t *testing.T) {
	rn := run{n: 12, delays: designDelays(), jitter: func(seq, seg int) time.Duration {
		return time.Duration(seq*seg%7) * time.Microsecond
	}}
	res, obs := rn.build()
	want, err := replay(flannelPath(), res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		obs     func() []capture.Observation
		ignored int
	}{
		{"reordered", func() []capture.Observation {
			o := slices.Clone(obs)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
			return o
		}, 0},
		{"duplicated later", func() []capture.Observation {
			o := slices.Clone(obs)
			for _, x := range obs {
				x.At = x.At.Add(3 * time.Microsecond)
				o = append(o, x)
			}
			return o
		}, 0},
		{"duplicated earlier copy first", func() []capture.Observation {
			var o []capture.Observation
			for _, x := range obs {
				late := x
				late.At = x.At.Add(time.Millisecond)
				o = append(o, late, x)
			}
			return o
		}, 0},
		{"foreign and other runs", func() []capture.Observation {
			return append(foreign(obs[0]), obs...)
		}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replay(flannelPath(), res, &capture.Capture{Observations: tt.obs()})
			if err != nil {
				t.Fatal(err)
			}
			if got.Probes.Ignored != tt.ignored {
				t.Errorf("got %d ignored, want %d", got.Probes.Ignored, tt.ignored)
			}
			got.Probes.Ignored = 0
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// foreign returns observations that must be ignored, derived from a valid one.
func foreign(o capture.Observation) []capture.Observation {
	other := o
	other.Payload = probe.Payload{RunID: testRun + 1, Seq: 0}.Marshal(56)
	short := o
	short.Payload = o.Payload[:10]
	noMagic := o
	noMagic.Payload = make([]byte, 56)
	unknown := o
	unknown.Point = "p9"
	wrongDir := o
	wrongDir.Dir = o.Dir.Reverse()
	unsent := o
	unsent.Payload = probe.Payload{RunID: testRun, Seq: 999}.Marshal(56)
	return []capture.Observation{other, short, noMagic, unknown, wrongDir, unsent}
}

func TestCorrelateMissing(t *testing.T) {
	tests := []struct {
		name     string
		rn       run
		wantLost map[int]int // segment -> lost; others 0
		wantSeen map[int]int // segment -> seen; others n
	}{
		{"lost in the network", run{lostIn: map[int]int{3: segNetwork}},
			map[int]int{segNetwork: 1},
			map[int]int{segNetwork: 9, segUplinkVXLAN: 9, segVXLANBridge: 9, segBridgeVeth: 9, segIngress: 9}},
		{"lost on the reply between flannel.1 and cni0", run{lostIn: map[int]int{2: segVXLANBridge, 5: segVXLANBridge}},
			map[int]int{segVXLANBridge: 2},
			map[int]int{segVXLANBridge: 8, segBridgeVeth: 8, segIngress: 8}},
		{"lost on the request before the bridge", run{lostIn: map[int]int{0: segVethBridge}},
			map[int]int{segVethBridge: 1},
			map[int]int{segVethBridge: 9, segBridgeVXLAN: 9, segVXLANUplink: 9, segNetwork: 9,
				segUplinkVXLAN: 9, segVXLANBridge: 9, segBridgeVeth: 9, segIngress: 9}},
		{"missed by the capture at cni0 only", run{missing: map[[2]int]bool{{4, 2}: true}},
			nil,
			map[int]int{segVethBridge: 9, segBridgeVXLAN: 9}},
		{"missed at the pod on the way back", run{missing: map[[2]int]bool{{4, 9}: true}},
			nil,
			map[int]int{segIngress: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.n, tt.rn.delays = 10, designDelays()
			r := tt.rn.correlate(t)
			for i, s := range r.Segments {
				wantSeen, ok := tt.wantSeen[i]
				if !ok {
					wantSeen = 10
				}
				if s.Lost != tt.wantLost[i] || s.Seen != wantSeen {
					t.Errorf("segment %d (%s->%s %s): got lost %d seen %d, want lost %d seen %d",
						i, s.From, s.To, s.Direction, s.Lost, s.Seen, tt.wantLost[i], wantSeen)
				}
			}
		})
	}
}

func TestCorrelateEmpty(t *testing.T) {
	tests := []struct {
		name   string
		probes *probe.Result
	}{
		{"no probes", &probe.Result{RunID: testRun}},
		{"probes but no observation", func() *probe.Result { r, _ := run{n: 5, delays: designDelays()}.build(); return r }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := replay(flannelPath(), tt.probes, nil)
			if err != nil {
				t.Fatalf("got error %v, want a result", err)
			}
			if got, want := r.Verdict.Text, "no probe was observed at any capture point"; got != want {
				t.Errorf("got verdict %q, want %q", got, want)
			}
			for i, s := range r.Segments {
				if s.US != nil || s.Seen != 0 || s.Lost != 0 || !s.Separable {
					t.Errorf("segment %d: got %+v, want separable, nothing seen, no us", i, s)
				}
			}
			if r.Verdict.Loss != nil || r.Verdict.Basis != "" {
				t.Errorf("got verdict %+v, want text only", r.Verdict)
			}
		})
	}
}

func TestCorrelateErrors(t *testing.T) {
	dup := flannelPath()
	dup.Points[3].ID = "p1"
	tests := []struct {
		name   string
		path   *topology.Path
		probes *probe.Result
		want   string
	}{
		{"nil path", nil, &probe.Result{}, "no path"},
		{"nil probes", flannelPath(), nil, "no probe result for probe source 0"},
		{"no points", &topology.Path{}, &probe.Result{}, "path has no capture points"},
		{"duplicate point", dup, &probe.Result{}, `duplicate point ID "p1" in path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := replay(tt.path, tt.probes, nil)
			if err == nil || r != nil {
				t.Fatalf("got %v, %v, want error %q", r, err, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got error %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCorrelateRTTSource(t *testing.T) {
	tests := []struct {
		name     string
		missing  map[[2]int]bool
		want     string
		pathRTTs int // probes with both pod-side stamps
	}{
		{"all captured", nil, RTTCapture, 3},
		{"a request missed at the pod", map[[2]int]bool{{1, 0}: true}, RTTCapture, 2},
		{"a reply missed at the pod", map[[2]int]bool{{1, 9}: true}, RTTMixed, 2},
		{"no reply captured at the pod", map[[2]int]bool{{0, 9}: true, {1, 9}: true, {2, 9}: true}, RTTUser, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run{n: 3, delays: designDelays(), missing: tt.missing}.correlate(t)
			if r.RTTSource != tt.want || r.RTT == nil {
				t.Errorf("got rtt %+v from %q, want one from %q", r.RTT, r.RTTSource, tt.want)
			}
			if got := r.PathRTT != nil; got != (tt.pathRTTs > 0) {
				t.Errorf("got path rtt %+v, want one over %d probes", r.PathRTT, tt.pathRTTs)
			}
		})
	}
}

// TestRewrites: a DNAT between p2 and p3 (a Service) shows as the request's
// destination changing there and the reply's source changing back; the
// peer swapping source and destination at the turnaround is no rewrite.
func TestRewrites(t *testing.T) {
	const vip, backend, pod = "10.96.0.10", "10.244.2.2", "10.244.1.2"
	path := flannelPath()
	path.Target = netip.MustParseAddr(vip)
	path.Translated = netip.MustParseAddr(backend)
	res, obs := run{path: path, n: 3, delays: designDelays()}.build()
	for i := range obs {
		o := &obs[i]
		dst := vip
		if o.Point == "p3" || o.Point == "p4" { // after the node's DNAT
			dst = backend
		}
		src := netip.MustParseAddr(pod)
		if o.IsRequest() {
			o.Src, o.Dst = src, netip.MustParseAddr(dst)
		} else {
			o.Src, o.Dst = netip.MustParseAddr(dst), src
		}
	}
	r, err := replay(path, res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	want := []Rewrite{
		{From: "p2", To: "p3", Direction: DirRequest, Field: "dst", Old: vip, New: backend},
		{From: "p3", To: "p2", Direction: DirReply, Field: "src", Old: backend, New: vip},
	}
	if !slices.Equal(r.Rewrites, want) {
		t.Errorf("rewrites %+v, want %+v", r.Rewrites, want)
	}
	if r.Translated != backend {
		t.Errorf("translated %q, want %q", r.Translated, backend)
	}
	if p := r.Points[4]; p.Request == nil || p.Request.Dst != backend || p.Reply == nil || p.Reply.Src != backend {
		t.Errorf("uplink addresses %+v / %+v, want the backend", p.Request, p.Reply)
	}
	if p := r.Points[0]; p.Request == nil || p.Request.Dst != vip || p.Request.Others != 0 {
		t.Errorf("pod addresses %+v, want the service address", p.Request)
	}
	var b strings.Builder
	if err := Render(&b, r, FormatText); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"p4  eth0@net:[4026531840]          uplink  request 10.244.1.2 > 10.244.2.2\n",
		"10.96.0.10 is translated to 10.244.2.2 by the node",
		"NAT: request dst 10.96.0.10 -> 10.244.2.2 between p2 cni0 and p3 flannel.1\n",
		"NAT: reply src 10.244.2.2 -> 10.96.0.10 between p3 flannel.1 and p2 cni0\n",
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, b.String())
		}
	}

	// Without NAT: no rewrite, and the text shows no addresses.
	res, obs = run{n: 3, delays: designDelays()}.build()
	for i := range obs {
		a, z := netip.MustParseAddr(pod), netip.MustParseAddr(backend)
		if obs[i].IsReply() {
			a, z = z, a
		}
		obs[i].Src, obs[i].Dst = a, z
	}
	if r, err = replay(flannelPath(), res, &capture.Capture{Observations: obs}); err != nil {
		t.Fatal(err)
	}
	if len(r.Rewrites) != 0 {
		t.Errorf("rewrites without NAT: %+v", r.Rewrites)
	}
}
