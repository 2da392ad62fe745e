package probe

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// stampConn is an echoConn that reports TX timestamps like Listen's socket:
// keys come from its own counter, which runs on across runs, and each send
// gets a SCHED and an SND stamp after delay (stamp makes them), read by
// echoConn.read like the socket's error queue.
type stampConn struct {
	*echoConn
	delay time.Duration
	stamp func(key uint32, sentAt time.Time) []txStamp
}

func newStampConn(delay time.Duration) *stampConn {
	c := newEchoConn()
	c.stamps = make(chan txStamp, 1024)
	return &stampConn{echoConn: c, delay: delay, stamp: goodStamps}
}

// goodStamps stamps SCHED 1 us after the send.
func goodStamps(key uint32, sentAt time.Time) []txStamp {
	return []txStamp{{key, sentAt.Add(time.Microsecond)}}
}

func (c *stampConn) sendKeyed(b []byte, dst netip.AddrPort, now func() time.Time) (time.Time, uint32, error) {
	at, key, err := c.echoConn.sendKeyed(b, dst, now)
	if err != nil {
		return at, key, err
	}
	stamps := c.stamp(key, at)
	time.AfterFunc(c.delay, func() {
		for _, s := range stamps {
			c.stamps <- s
		}
	})
	return at, key, nil
}

// wantGoodStamps checks that every probe carries the stamp goodStamps
// made for its own send.
func wantGoodStamps(t *testing.T, res *Result) {
	t.Helper()
	for _, p := range res.Probes {
		if !p.SchedAt.Equal(p.SentAt.Add(time.Microsecond)) {
			t.Errorf("probe %d sent at %v: got SchedAt %v; want +1us", p.Seq, p.SentAt, p.SchedAt)
		}
	}
}

// TestRunWaitsForLateStamps has every probe's stamps arrive 5 ms after its
// reply: Run must keep collecting after the last reply.
func TestRunWaitsForLateStamps(t *testing.T) {
	conn := newStampConn(5 * time.Millisecond)
	res, err := Run(context.Background(), conn, testConfig(10))
	if err != nil {
		t.Fatal(err)
	}
	wantGoodStamps(t, res)
}

// TestRunStampGraceIsBounded: stamps that never come cost stampGrace after
// the last reply, not the reply timeout, and leave the fields zero.
func TestRunStampGraceIsBounded(t *testing.T) {
	conn := newStampConn(time.Hour)
	cfg := testConfig(3)
	cfg.Timeout = 5 * time.Second
	start := time.Now()
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < stampGrace || took > time.Second {
		t.Errorf("Run took %v, want about stampGrace (%v)", took, stampGrace)
	}
	for _, p := range res.Probes {
		if !p.Answered() || !p.SchedAt.IsZero() {
			t.Errorf("probe %d: answered %v, SchedAt %v; want answered, no stamp", p.Seq, p.Answered(), p.SchedAt)
		}
	}
}

// TestRunIgnoresStampsOfEarlierRuns reuses a socket: stamps of the first
// run that are still queued when the second starts carry keys the second
// run never sent with, so they must not land on its probes.
func TestRunIgnoresStampsOfEarlierRuns(t *testing.T) {
	conn := newStampConn(0)
	if _, err := Run(context.Background(), conn, testConfig(5)); err != nil {
		t.Fatal(err)
	}
	late := time.Now().Add(time.Hour) // would pass the SentAt check
	for key := range uint32(5) {
		conn.stamps <- txStamp{key, late}
	}
	cfg := testConfig(5)
	cfg.RunID++
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantGoodStamps(t, res)
}

// TestRunRefusesStampsBeforeSentAt: a stamp older than its probe's send
// cannot be that probe's (the key mapping is off) and is dropped; a later
// stamp with the same key is still taken.
func TestRunRefusesStampsBeforeSentAt(t *testing.T) {
	conn := newStampConn(0)
	conn.stamp = func(key uint32, sentAt time.Time) []txStamp {
		return []txStamp{{key, sentAt.Add(-time.Microsecond)}, {key, sentAt.Add(time.Microsecond)}}
	}
	res, err := Run(context.Background(), conn, testConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Probes {
		if !p.SchedAt.Equal(p.SentAt.Add(time.Microsecond)) {
			t.Errorf("probe %d: got SchedAt %v; want the later stamp, SentAt+1us", p.Seq, p.SchedAt)
		}
	}
}

func TestAddStampKeepsTheFirst(t *testing.T) {
	sent := time.Unix(100, 0)
	p := Probe{SentAt: sent}
	for i, tc := range []struct {
		s    txStamp
		want bool
	}{
		{txStamp{1, sent.Add(-1)}, false}, // before the send: another packet's
		{txStamp{1, sent.Add(3)}, true},
		{txStamp{1, sent.Add(5)}, false}, // a second device queue
	} {
		if got := p.addStamp(tc.s); got != tc.want {
			t.Errorf("stamp %d %+v: addStamp = %v, want %v", i, tc.s, got, tc.want)
		}
	}
	if !p.SchedAt.Equal(sent.Add(3)) || !p.stamped() {
		t.Errorf("got SchedAt %v; want the first stamp after the send", p.SchedAt)
	}
}

func TestScheduleKeepsTheGrid(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Unix(100, 0)
	s := schedule{interval: 10 * ms}
	tests := []struct {
		n    int
		now  time.Time
		want time.Duration
	}{
		{1, t0, 10 * ms},             // first probe sent at t0: the next is due at t0+10ms
		{2, t0.Add(13 * ms), 7 * ms}, // woke 3 ms late: the grid still says t0+20ms
		{3, t0.Add(21 * ms), 9 * ms}, // due at t0+30ms
		{4, t0.Add(45 * ms), 0},      // 5 ms behind: send at once, keep the grid
		{5, t0.Add(66 * ms), 0},      // 16 ms behind (more than one interval): no burst, a new grid
		{6, t0.Add(67 * ms), 9 * ms}, // on the new grid: probe 6 due at t0+76ms
	}
	for _, tc := range tests {
		if got := s.next(tc.n, tc.now); got != tc.want {
			t.Errorf("next(%d) at t0+%v: got %v, want %v", tc.n, tc.now.Sub(t0), got, tc.want)
		}
	}
}
