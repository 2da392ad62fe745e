//go:build linux

package capture

import (
	"context"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// TestPrivilegedReaderWakesToTheRate: a session told its rate reads a
// slow run in a few wake-ups, far fewer than its probes (a wake-up on a
// cold cache costs about what a probe's own work does), where one that
// does not know the rate reads every 20 ms; both read every packet. The
// probes go every 10 ms across the VXLAN lab, two points, as `cnitrace
// trace --interval 10ms` sends them; the wake-ups are the times the
// reader parked in the netpoller (poller.waits).
func TestPrivilegedReaderWakesToTheRate(t *testing.T) {
	lab := newVXLANLab(t)
	conn := openICMP(t, lab.a.ns)
	const n, interval = 100, 10 * time.Millisecond
	rate := Rate{Interval: interval, Packets: 2, Frame: 14 + 20 + 8 + 56}
	waits := map[bool]int{}
	for _, known := range []bool{true, false} {
		cfg := Config{Magic: probe.Magic}
		if known {
			cfg.Rate = rate
		}
		s, err := Start(context.Background(), lab.targets(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval))) // on a schedule: a late wake-up does not stretch the rest
			ping(t, conn, lab.b.overlay, i, probe.Payload{RunID: 7, Seq: uint32(i)}.Marshal(56))
		}
		took := time.Since(start)
		c, err := s.Stop()
		if err != nil {
			t.Fatal(err)
		}
		waits[known] = s.poll.waits
		t.Logf("rate known %v: %d probes in %v, read in %d wake-ups, scan gap %v", known, n, took.Round(time.Millisecond), waits[known], s.geo.scanGap)
		if got, want := len(c.Observations), 4*n; got != want {
			t.Errorf("rate known %v: got %d observations, want %d (request and reply at 2 points)", known, got, want)
		}
		for _, st := range c.Stats {
			if st.Drops != 0 {
				t.Errorf("rate known %v: point %s dropped %d packets", known, st.Point, st.Drops)
			}
		}
	}
	if waits[true] > n/8 {
		t.Errorf("told its rate, the reader woke %d times for %d probes, want at most %d", waits[true], n, n/8)
	}
	if 3*waits[true] > waits[false] {
		t.Errorf("told its rate, the reader woke %d times, not told %d: want under a third", waits[true], waits[false])
	}
}
