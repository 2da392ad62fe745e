package report

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

const fuzzProbes = 6

// FuzzCorrelate builds a path, probes and observations from the fuzz bytes
// and checks that an Accumulator's Result and Render never fail or panic,
// and that no segment accounts for more probes than were observed at its
// start. With an odd number of bytes the other run of the observations is a
// baseline source, which sent the same probes.
func FuzzCorrelate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 0xff, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 10, 2, 1, 0, 1, 0, 10})
	f.Add([]byte{4, 0x0f, 1, 1, 1, 1, 0, 0, 2, 1, 1, 1, 0, 0, 2, 1, 2, 0, 0, 0})
	f.Add([]byte{0, 0x3f, 0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 1, 0, 3, 1, 0, 0, 2})
	f.Add([]byte{4 | 8<<3, 0x00, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 2, 1, 0, 0, 2}) // seen up to p2, p3 dropped packets: unknown
	f.Add([]byte{4, 0x7f, 2, 2, 1, 2, 5, 0, 0, 1, 0, 1, 0})                    // odd: a baseline reply at p2, a traced request at p0
	f.Fuzz(func(t *testing.T, data []byte) {
		path, res, capt := fuzzInput(data)
		probes := []*probe.Result{res}
		if len(data)%2 == 1 {
			probes = append(probes, &probe.Result{RunID: testRun + 1, Probes: res.Probes})
		}
		r, err := replaySources(path, capt, probes...)
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		checkInvariants(t, path, res, capt.Observations, r)
		checkBaseline(t, len(probes) > 1, capt.Observations, r)
		for _, format := range []Format{FormatText, FormatJSON} {
			var b bytes.Buffer
			if err := Render(&b, r, format); err != nil {
				t.Fatalf("Render %v: %v", format, err)
			}
			if format == FormatJSON && !json.Valid(b.Bytes()) {
				t.Fatalf("got invalid JSON:\n%s", b.Bytes())
			}
		}
	})
}

// fuzzInput decodes: byte 0 picks the number of points (mod 5) and, in its
// top 5 bits, the points whose capture dropped packets; byte 1 which probes
// were answered (bits 0-5) and whether they carry a SCHED (bit 6) and an SND
// (bit 7) stamp; then 5 bytes per observation: point, type and direction,
// sequence, stamp and payload, time offset in 100 ns (equal offsets make
// inherited stamps likely).
func fuzzInput(data []byte) (*topology.Path, *probe.Result, *capture.Capture) {
	path := flannelPath()
	head := append(data[:min(len(data), 2):min(len(data), 2)], 0, 0)
	capt := &capture.Capture{}
	for i, p := range path.Points {
		if head[0]>>3&(1<<i) != 0 {
			capt.Stats = append(capt.Stats, capture.PointStats{Point: p.ID, Drops: 1})
		}
	}
	path.Points = path.Points[:1+int(head[0])%len(path.Points)]
	base := time.Unix(1_800_000_000, 0)
	res := &probe.Result{RunID: testRun}
	for seq := range fuzzProbes {
		p := probe.Probe{Seq: uint32(seq), SentAt: base}
		if head[1]&0x40 != 0 {
			p.SchedAt = base.Add(time.Duration(seq) * 300 * time.Nanosecond)
		}
		if head[1]&(1<<seq) != 0 {
			p.ReceivedAt = base.Add(time.Duration(seq+1) * time.Microsecond)
		}
		res.Probes = append(res.Probes, p)
	}
	for rest := data[min(len(data), 2):]; len(rest) >= 5; rest = rest[5:] {
		capt.Observations = append(capt.Observations, fuzzObservation(rest[:5], base))
	}
	return path, res, capt
}

func fuzzObservation(b []byte, base time.Time) capture.Observation {
	types := []uint8{8, 0, 129, 3}
	o := capture.Observation{
		Point:    []string{"p0", "p1", "p2", "p3", "p4", "px"}[int(b[0])%6],
		Dir:      topology.TX,
		ICMPType: types[int(b[1]>>1)%len(types)],
		Stamp:    capture.StampSKB,
		At:       base.Add(time.Duration(int8(b[4])) * 100 * time.Nanosecond),
	}
	if b[1]&1 != 0 {
		o.Dir = topology.RX
	}
	if b[3]&1 != 0 {
		o.Stamp = capture.StampCopy
	}
	run := uint64(testRun)
	if b[3]&2 != 0 {
		run++
	}
	o.Payload = probe.Payload{RunID: run, Seq: uint32(b[2] % (fuzzProbes + 2))}.Marshal(probe.TokenLen)
	if b[3]&4 != 0 {
		o.Payload = o.Payload[:b[3]>>3%probe.TokenLen]
	}
	return o
}

// checkInvariants recomputes, independently of the implementation, how many
// probes were observed at every step, and checks the segments against it.
func checkInvariants(t *testing.T, path *topology.Path, res *probe.Result, obs []capture.Observation, r *Result) {
	t.Helper()
	steps := stepsOf(path)
	at := make([]map[uint32]bool, len(steps))
	for i := range at {
		at[i] = map[uint32]bool{}
	}
	for _, o := range obs {
		p, err := probe.ParsePayload(o.Payload)
		if err != nil || p.RunID != res.RunID || int(p.Seq) >= len(res.Probes) || (!o.IsRequest() && !o.IsReply()) {
			continue
		}
		for i, s := range steps {
			if s.point.ID == o.Point && s.reply == o.IsReply() && s.dir == o.Dir {
				at[i][p.Seq] = true
			}
		}
	}
	if got, want := len(r.Segments), len(steps)-1; got != want {
		t.Fatalf("got %d segments, want %d", got, want)
	}
	for i, s := range r.Segments {
		if s.Seen < 0 || s.Lost < 0 || s.Unknown < 0 || s.Seen+s.Lost+s.Unknown > len(at[i]) {
			t.Errorf("segment %d: got seen %d + lost %d + unknown %d, want at most the %d probes observed at its start",
				i, s.Seen, s.Lost, s.Unknown, len(at[i]))
		}
		if s.Unknown > 0 && !r.point(s.To).Dropped() {
			t.Errorf("segment %d: got %d unknown, but the capture at %s dropped nothing", i, s.Unknown, s.To)
		}
		if !s.Separable && s.US != nil {
			t.Errorf("segment %d: got us %+v on a non-separable segment", i, s.US)
		}
	}
	checkRTT(t, res, r)
	if r.Probes.Ignored > len(obs) || r.Verdict.Text == "" {
		t.Errorf("got ignored %d of %d, verdict %q", r.Probes.Ignored, len(obs), r.Verdict.Text)
	}
}

// checkBaseline checks that a baseline source gives a baseline block that
// counts every observation of its run.
func checkBaseline(t *testing.T, baseline bool, obs []capture.Observation, r *Result) {
	t.Helper()
	if !baseline {
		if r.Baseline != nil {
			t.Fatalf("got a baseline block without a baseline source: %+v", r.Baseline)
		}
		return
	}
	want := 0
	for _, o := range obs {
		if p, err := probe.ParsePayload(o.Payload); err == nil && p.RunID == testRun+1 {
			want++
		}
	}
	if b := r.Baseline; b == nil || b.Observations != want || b.NetNS != hostNS {
		t.Fatalf("got baseline %+v, want one from %s over %d observations", b, hostNS, want)
	}
}

// checkRTT checks that every answered probe is counted once per end in the
// clocks summary, and that the RTT exists exactly when one was answered.
func checkRTT(t *testing.T, res *probe.Result, r *Result) {
	t.Helper()
	answered := 0
	for _, p := range res.Probes {
		if p.Answered() {
			answered++
		}
	}
	if (r.RTT != nil) != (answered > 0) || (r.RTTClocks != nil) != (answered > 0) || (r.PingRTT != nil) != (answered > 0) {
		t.Fatalf("got rtt %+v, clocks %+v, ping %+v with %d answered", r.RTT, r.RTTClocks, r.PingRTT, answered)
	}
	if c := r.RTTClocks; c != nil && (total(c.Send) != answered || total(c.Receive) != answered) {
		t.Errorf("got clocks %+v, want %d per end", c, answered)
	}
	if len(r.Timelines) != len(res.Probes) {
		t.Errorf("got %d timelines, want %d", len(r.Timelines), len(res.Probes))
	}
}
