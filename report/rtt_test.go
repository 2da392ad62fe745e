package report

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// In these runs, without jitter, the pod's interface sees the request 20 us
// after the send call and the reply 126.1 us after the request (the sum of
// designDelays); the probe socket reads the reply 15 us later.
const (
	pathUS = 126.1
	pingUS = 146.1
	userUS = 161.1
)

func TestRTTClocks(t *testing.T) {
	sched := func(int) time.Duration { return -1500 * time.Nanosecond }
	perSeq := func(seq int) time.Duration { // SCHED, SCHED, none
		if seq%3 == 2 {
			return 0
		}
		return -1500 * time.Nanosecond
	}
	type probeWant struct {
		send, recv string
		rtt        float64 // us
	}
	tests := []struct {
		name    string
		stamps  func(int) time.Duration
		missing map[[2]int]bool
		probes  []probeWant
		clocks  Clocks
		source  string
		notes   []string // prefixes
	}{
		{"SCHED stamps", sched, nil,
			[]probeWant{{probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockSched, RTTCapture, pathUS + 1.5}},
			Clocks{Send: map[string]int{probe.ClockSched: 3}, Receive: map[string]int{RTTCapture: 3}}, RTTCapture, nil},
		{"no kernel stamps: as ping", nil, nil,
			[]probeWant{{probe.ClockUser, RTTCapture, pingUS}, {probe.ClockUser, RTTCapture, pingUS}, {probe.ClockUser, RTTCapture, pingUS}},
			Clocks{Send: map[string]int{probe.ClockUser: 3}, Receive: map[string]int{RTTCapture: 3}}, RTTCapture,
			[]string{"send clock fallback: 3 of 3 answered probes had no kernel TX stamp; their send time is user space"}},
		{"SCHED, SCHED, none", perSeq, nil,
			[]probeWant{{probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockUser, RTTCapture, pingUS}},
			Clocks{Send: map[string]int{probe.ClockSched: 2, probe.ClockUser: 1}, Receive: map[string]int{RTTCapture: 3}}, RTTCapture,
			[]string{"send clock fallback: 1 of 3 answered probes had no kernel TX stamp; its send time is user space"}},
		{"reply missed at the pod", sched, map[[2]int]bool{{1, 9}: true},
			[]probeWant{{probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockSched, RTTUser, pathUS + 1.5 + 15}, {probe.ClockSched, RTTCapture, pathUS + 1.5}},
			Clocks{Send: map[string]int{probe.ClockSched: 3}, Receive: map[string]int{RTTCapture: 2, RTTUser: 1}}, RTTMixed,
			[]string{"receive clock fallback: the capture on the pod's interface missed the reply of 1 of 3 answered probes"}},
		{"both fallbacks on one probe", perSeq, map[[2]int]bool{{2, 9}: true},
			[]probeWant{{probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockSched, RTTCapture, pathUS + 1.5}, {probe.ClockUser, RTTUser, userUS}},
			Clocks{Send: map[string]int{probe.ClockSched: 2, probe.ClockUser: 1}, Receive: map[string]int{RTTCapture: 2, RTTUser: 1}}, RTTMixed,
			[]string{"send clock fallback: 1 of 3", "receive clock fallback: the capture on the pod's interface missed the reply of 1 of 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run{n: 3, delays: designDelays(), stamps: tt.stamps, missing: tt.missing}.correlate(t)
			if len(r.Timelines) != len(tt.probes) {
				t.Fatalf("got %d timelines, want %d", len(r.Timelines), len(tt.probes))
			}
			for i, w := range tt.probes {
				p := r.Timelines[i]
				d, ok := p.RTT()
				if p.SendClock != w.send || p.ReceiveClock != w.recv || !ok || micros(d) != w.rtt {
					t.Errorf("probe %d: got clocks %s/%s rtt %.1f us (%v), want %s/%s %.1f us", p.Seq, p.SendClock, p.ReceiveClock, micros(d), ok, w.send, w.recv, w.rtt)
				}
			}
			if r.RTTClocks == nil || !reflect.DeepEqual(*r.RTTClocks, tt.clocks) {
				t.Errorf("got clocks %+v, want %+v", r.RTTClocks, tt.clocks)
			}
			if r.RTTSource != tt.source {
				t.Errorf("got rtt_source %q, want %q", r.RTTSource, tt.source)
			}
			if len(r.RTTNotes) != len(tt.notes) {
				t.Fatalf("got notes %q, want %d starting with %q", r.RTTNotes, len(tt.notes), tt.notes)
			}
			for i, n := range tt.notes {
				if !strings.HasPrefix(r.RTTNotes[i].String(), n) {
					t.Errorf("got note %q, want it to start with %q", r.RTTNotes[i], n)
				}
			}
		})
	}
}

// TestRTTPingAndUser: rtt_ping_us keeps what rtt_us measured before kernel
// send stamps, and the user-space RTT stays user space at both ends.
func TestRTTPingAndUser(t *testing.T) {
	r := run{n: 5, delays: designDelays(), stamps: func(int) time.Duration { return -2 * time.Microsecond }}.correlate(t)
	for _, c := range []struct {
		name string
		d    *Dist
		want float64
	}{{"rtt_us", r.RTT, pathUS + 2}, {"rtt_ping_us", r.PingRTT, pingUS}, {"rtt_user_us", r.UserRTT, userUS}, {"rtt_path_us", r.PathRTT, pathUS}} {
		if c.d == nil || c.d.P50 != c.want || c.d.Max != c.want {
			t.Errorf("got %s %+v, want p50 and max %.1f", c.name, c.d, c.want)
		}
	}
}

func TestRTTUnanswered(t *testing.T) {
	r := run{n: 3, delays: designDelays(), lostIn: map[int]int{0: segNetwork, 1: segNetwork, 2: segNetwork}}.correlate(t)
	if r.RTT != nil || r.PingRTT != nil || r.UserRTT != nil || r.RTTClocks != nil || r.RTTNotes != nil || r.RTTSource != "" {
		t.Errorf("got rtt %+v ping %+v user %+v clocks %+v notes %q source %q, want none", r.RTT, r.PingRTT, r.UserRTT, r.RTTClocks, r.RTTNotes, r.RTTSource)
	}
	for _, p := range r.Timelines {
		if _, ok := p.RTT(); ok || p.ReceiveClock != "" || !p.Received.IsZero() {
			t.Errorf("probe %d: got an RTT or receive time on an unanswered probe: %+v", p.Seq, p)
		}
	}
}

// TestRTTKernelNotAboveUser is a property: with consistent times (the send
// call, then SCHED, then the request at the pod's interface, then the reply
// at the pod's interface, then the read), the kernel-based RTT of every
// probe is at most ping's, which is at most the user-space one, and so are
// their percentiles.
func TestRTTKernelNotAboveUser(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	for trial := range 200 {
		n := 1 + rng.IntN(20)
		delays := make([]time.Duration, numSegs)
		for i := range delays {
			delays[i] = between(100*time.Nanosecond, 100*time.Microsecond)
		}
		offsets := make([]time.Duration, n) // 0: no SCHED stamp
		missing := map[[2]int]bool{}
		for seq := range n {
			if rng.IntN(3) > 0 {
				offsets[seq] = -between(1, 20*time.Microsecond)
			}
			if rng.IntN(5) == 0 {
				missing[[2]int{seq, 2*len(flannelPath().Points) - 1}] = true
			}
		}
		stamps := func(seq int) time.Duration { return offsets[seq] }
		jitter := func(seq, seg int) time.Duration { return time.Duration((seq*7+seg*3)%11) * time.Duration(trial) }
		r := run{n: n, delays: delays, jitter: jitter, stamps: stamps, missing: missing}.correlate(t)
		for _, p := range r.Timelines {
			k, _ := p.RTT()
			ping, _ := p.PingRTT()
			user, _ := p.UserRTT()
			if p.SendClock != probe.ClockUser && !(k <= ping && ping <= user) {
				t.Fatalf("trial %d, probe %d (%s/%s): got rtt %v, ping %v, user %v, want rtt <= ping <= user",
					trial, p.Seq, p.SendClock, p.ReceiveClock, k, ping, user)
			}
		}
		checkNotAbove(t, trial, r.RTT, r.PingRTT)
		checkNotAbove(t, trial, r.PingRTT, r.UserRTT)
	}
}

func checkNotAbove(t *testing.T, trial int, a, b *Dist) {
	t.Helper()
	if a.P50 > b.P50 || a.P90 > b.P90 || a.P99 > b.P99 || a.Max > b.Max {
		t.Fatalf("trial %d: got %+v above %+v", trial, a, b)
	}
}

func TestRenderRTT(t *testing.T) {
	sched := func(int) time.Duration { return -time.Microsecond }
	allMissed := map[[2]int]bool{{0, 9}: true, {1, 9}: true, {2, 9}: true}
	tests := []struct {
		name      string
		rn        run
		edit      func(*Result)
		want, not []string
	}{
		{"kernel stamps", run{stamps: sched}, nil,
			[]string{"max 127.1 us (kernel send stamp to the receive stamp on the source interface)\n",
				"max 146.1 us as ping measures (send call to the receive stamp on the source interface)\n",
				"max 161.1 us at the probe socket", "clocks: send kernel-sched 3; receive capture 3\n"},
			[]string{"fallback"}},
		{"no kernel stamps", run{}, nil,
			[]string{"max 146.1 us (send call to the receive stamp on the source interface, as ping measures; user-space fallbacks below)\n",
				"clocks: send user 3; receive capture 3\n  send clock fallback: 3 of 3 answered probes had no kernel TX stamp"},
			[]string{"as ping measures (send call"}},
		{"every reply missed at the pod", run{stamps: sched, missing: allMissed}, nil,
			[]string{"max 142.1 us (kernel send stamp to the read of the reply; user-space fallbacks below)\n",
				"max 161.1 us as ping measures (send call to the read of the reply)\n",
				"clocks: send kernel-sched 3; receive user 3\n  receive clock fallback: the capture on the pod's interface missed the reply of 3 of 3"},
			[]string{"at the probe socket"}},
		{"a result without clocks", run{stamps: sched}, func(r *Result) { r.RTTClocks, r.RTTNotes = nil, nil },
			[]string{"(send call to the receive stamp on the source interface, as ping measures)\n"},
			[]string{"clocks:", "fallback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.n, tt.rn.delays = 3, designDelays()
			r := tt.rn.correlate(t)
			if tt.edit != nil {
				tt.edit(r)
			}
			var b strings.Builder
			if err := Render(&b, r, FormatText); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("got:\n%s\nwant it to contain %q", b.String(), w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("got:\n%s\nwant no %q", b.String(), n)
				}
			}
		})
	}
}
