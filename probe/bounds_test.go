package probe

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunAllocatesNothingByCount asks for ten million probes and stops the
// run after a few: what it allocated must not depend on the count. (Before
// runs were bounded, Run made room for every probe up front: 1.2 GB here,
// and an OOM for --count 2000000000.)
func TestRunAllocatesNothingByCount(t *testing.T) {
	conn := newEchoConn()
	cfg := testConfig(10_000_000)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Run(ctx, conn, cfg)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	const limit = 16 << 20
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Errorf("a run cut short after %d probes allocated %d MB, want under %d MB whatever the count", len(res.Probes), got>>20, limit>>20)
	}
}

// TestRunWindowIsBounded: a peer that never answers and a timeout far
// longer than the run would keep every probe in flight; with a window of
// 8 the oldest is given up on whenever a ninth is sent, so the Sink gets
// every probe, in order, while at most 8 are held.
func TestRunWindowIsBounded(t *testing.T) {
	conn := newEchoConn()
	conn.drop = func(int) bool { return true }
	cfg := testConfig(50)
	cfg.Timeout = 500 * time.Millisecond
	var mu sync.Mutex
	var got []Probe
	maxHeld := 0
	conn.writeErr = func(seq int) error { // seq is about to be sent
		mu.Lock()
		defer mu.Unlock()
		maxHeld = max(maxHeld, seq-len(got))
		return nil
	}
	cfg.Sink = func(p Probe) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}
	res, err := run(context.Background(), conn, cfg, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Probes) != 0 || res.Sent != 50 || len(got) != 50 {
		t.Fatalf("got %d probes in the Result, %d sent, %d to the Sink; want 0, 50, 50", len(res.Probes), res.Sent, len(got))
	}
	if maxHeld > 8 {
		t.Errorf("%d probes in flight at a send, want at most 8", maxHeld)
	}
	early := 0
	for i, p := range got {
		if p.Seq != uint32(i) || p.Answered() {
			t.Fatalf("probe %d of the Sink: seq %d, answered %v; want seq %d unanswered", i, p.Seq, p.Answered(), i)
		}
		if p.Deadline.Before(p.SentAt.Add(cfg.Timeout)) {
			early++
		}
	}
	if early < 50-8 {
		t.Errorf("%d probes given up on before their timeout, want the %d pushed out by later ones", early, 50-8)
	}
}

// TestRunDuration: --duration bounds the sending alone (Count 0) or with a
// count, whichever comes first.
func TestRunDuration(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name      string
		count     int
		duration  time.Duration
		min, max_ int
	}{
		{"duration alone", 0, 60 * ms, 1, 12},
		{"count first", 5, time.Hour, 5, 5},
		{"duration first", 100_000, 60 * ms, 1, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.count)
			cfg.Duration, cfg.Interval = tc.duration, 5*ms
			res, err := Run(context.Background(), newEchoConn(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent < tc.min || res.Sent > tc.max_ || res.Answered != res.Sent || len(res.Probes) != res.Sent {
				t.Errorf("sent %d, answered %d, recorded %d; want %d to %d, all answered and recorded", res.Sent, res.Answered, len(res.Probes), tc.min, tc.max_)
			}
		})
	}
}

// TestRunLateReplies: replies that come after the timeout answer nothing;
// they are counted late, and each probe says when the run stopped waiting.
func TestRunLateReplies(t *testing.T) {
	conn := newEchoConn()
	conn.late = 30 * time.Millisecond
	cfg := testConfig(6)
	cfg.Interval, cfg.Timeout = 10*time.Millisecond, 5*time.Millisecond
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 0 || res.LateReplies < 3 || res.LateReplies > 6 {
		t.Errorf("answered %d, late %d; want none answered, most of the 6 late (the last ones come after the run)", res.Answered, res.LateReplies)
	}
	for _, p := range res.Probes {
		if p.Answered() || !p.Deadline.Equal(p.SentAt.Add(cfg.Timeout)) {
			t.Errorf("probe %d: answered %v, deadline %v after the send; want unanswered, %v", p.Seq, p.Answered(), p.Deadline.Sub(p.SentAt), cfg.Timeout)
		}
	}
}

// TestRunCancelSetsDeadlines: probes still in flight when the run is
// cancelled are handed over, their Deadline the moment it stopped.
func TestRunCancelSetsDeadlines(t *testing.T) {
	conn := newEchoConn()
	conn.drop = func(int) bool { return true }
	cfg := testConfig(1000)
	cfg.Timeout = 10 * time.Second // would hold every probe
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, conn, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || len(res.Probes) == 0 || len(res.Probes) != res.Sent {
		t.Fatalf("got %v with %d of %d probes handed over; want the deadline and all of them", err, len(res.Probes), res.Sent)
	}
	last := res.Probes[len(res.Probes)-1]
	for _, p := range res.Probes {
		if d := p.Deadline.Sub(p.SentAt); d >= cfg.Timeout || d < 0 || p.Deadline.Before(last.SentAt) {
			t.Fatalf("probe %d: deadline %v after its send, want when the run stopped, after the last send", p.Seq, d)
		}
	}
}

// TestRunCountsSocketDrops: the drops the socket counted during the run
// are the Result's, not those from before it.
func TestRunCountsSocketDrops(t *testing.T) {
	conn := newEchoConn()
	conn.drops.Store(5) // an earlier run's
	conn.writeErr = func(seq int) error {
		if seq == 3 {
			conn.drops.Add(7)
		}
		return nil
	}
	res, err := Run(context.Background(), conn, testConfig(6))
	if err != nil {
		t.Fatal(err)
	}
	if res.SocketDrops != 7 {
		t.Errorf("got %d socket drops, want the 7 of this run", res.SocketDrops)
	}
}

func TestConfigValidateBounds(t *testing.T) {
	ok := testConfig(10)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" means valid
	}{
		{"negative count", func(c *Config) { c.Count = -1 }, "count -1: must be between 1 and 4294967295"},
		{"count 0 without duration", func(c *Config) { c.Count = 0 }, "count 0: must be at least 1, or 0 with a duration"},
		{"count 0 with duration", func(c *Config) { c.Count, c.Duration = 0, time.Minute }, ""},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "duration -1s: must not be negative"},
		{"interval below the minimum", func(c *Config) { c.Interval = MinInterval - 1 }, "interval 99.999µs: must be at least 100us (at most 10000 probes a second)"},
		{"interval 0 for one probe", func(c *Config) { c.Count, c.Interval = 1, 0 }, ""},
		{"interval at the minimum", func(c *Config) { c.Interval = MinInterval }, ""},
		{"too many in flight", func(c *Config) { c.Interval, c.Timeout = MinInterval, 2*time.Second }, "timeout 2s: at interval 100µs up to 20000 probes would wait for replies at once, at most 16384 may"},
		{"just enough in flight", func(c *Config) { c.Interval, c.Timeout = MinInterval, time.Second }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

// TestWindow pushes and pops across the ring's wrap and growth.
func TestWindow(t *testing.T) {
	w := newWindow(200)
	next, oldest := uint32(0), uint32(0)
	for round := range 40 {
		for range round % 7 * 9 { // 0 to 54 at a time, up to 150 held
			if w.full() {
				break
			}
			w.push(flight{Probe: Probe{Seq: next}})
			next++
		}
		for range round % 5 * 8 {
			if w.front() == nil {
				break
			}
			if f := w.pop(); f.Seq != oldest {
				t.Fatalf("popped seq %d, want %d", f.Seq, oldest)
			}
			oldest++
		}
		for seq := oldest; seq < next; seq++ {
			if f := w.at(seq); f == nil || f.Seq != seq {
				t.Fatalf("round %d: at(%d) = %v, want the probe", round, seq, f)
			}
		}
		if w.at(next) != nil || (oldest > 0 && w.at(oldest-1) != nil) || w.n != int(next-oldest) {
			t.Fatalf("round %d: probes outside [%d, %d) found, or %d held", round, oldest, next, w.n)
		}
	}
	if len(w.ring) > 256 {
		t.Errorf("ring of %d slots for at most 200 probes", len(w.ring))
	}
}

// TestWindowByKey finds probes by the OPT_ID key of their stamps as the
// kernel hands keys out: one per send in order, none for a send refused
// before the packet was built, one taken by a send refused after
// (EPERM), across the 32-bit wrap and the ring's, with the oldest probes
// handed over; keys of no probe in flight find nothing.
func TestWindowByKey(t *testing.T) {
	w := newWindow(MaxInFlight)
	keys := map[uint32]uint32{} // key -> seq, of the keyed probes in flight
	key, oldest := uint32(1<<32-300), uint32(0)
	for seq := range uint32(1000) {
		f := flight{Probe: Probe{Seq: seq}, key: key}
		switch {
		case seq%7 == 3: // ENETUNREACH: no key taken
		case seq%11 == 5: // EPERM: a key taken, the probe refused
			key++
		default:
			f.keyed = true
			keys[key] = seq
			key++
		}
		w.push(f)
		if seq%3 == 0 && w.n > 40 { // hand over two oldest for every three sent
			for range 2 {
				p := w.pop()
				delete(keys, p.key)
				oldest++
			}
		}
		for k, want := range keys {
			if f := w.byKey(k); f == nil || f.Seq != want {
				t.Fatalf("after probe %d: key %d found %v, want probe %d", seq, k, f, want)
			}
		}
		for _, k := range []uint32{key, key + 1, key - uint32(w.n) - 5, key + 1<<31} {
			if _, ok := keys[k]; !ok && w.byKey(k) != nil {
				t.Fatalf("after probe %d: key %d found probe %d, want none", seq, k, w.byKey(k).Seq)
			}
		}
	}
	if oldest == 0 || key > 1<<31 {
		t.Fatalf("handed over %d, last key %d: the test should have wrapped the keys and the ring", oldest, key)
	}
}

// TestScheduleCatchesUpBelowAMillisecond: Go's timers wake about once a
// millisecond, so at a 200 us interval the sender catches up with the
// grid in bursts, and starts a new grid only beyond catchUp.
func TestScheduleCatchesUpBelowAMillisecond(t *testing.T) {
	us := time.Microsecond
	t0 := time.Unix(100, 0)
	s := schedule{interval: 200 * us}
	steps := []struct {
		n    int
		now  time.Duration // after t0
		want time.Duration
	}{
		{1, 0, 200 * us},
		{2, 1100 * us, 0}, {3, 1100 * us, 0}, {4, 1100 * us, 0}, {5, 1100 * us, 0}, // due at 400 to 1000 us
		{6, 1100 * us, 100 * us}, // due at 1200 us
		{7, 4000 * us, 0},        // due at 1400 us: 2.6 ms behind, within catchUp: at once
		{8, 4000 * us, 0},        // due at 1600 us
		{9, 15000 * us, 0},       // due at 1800 us: 13.2 ms behind, a new grid
		{10, 15000 * us, 200 * us},
	}
	for _, st := range steps {
		if got := s.next(st.n, t0.Add(st.now)); got != st.want {
			t.Errorf("next(%d) at t0+%v: got %v, want %v", st.n, st.now, got, st.want)
		}
	}
}

// TestCollectorAppliesWaitingRepliesFirst: a collector that was off the
// CPU past a probe's timeout must still read the reply and stamps already
// queued on its socket (received in time) before it gives up on the probe.
// Without that, 16 of 20,000 probes at 100 us lost their TX stamps in one
// lab run.
func TestCollectorAppliesWaitingRepliesFirst(t *testing.T) {
	conn := newStampConn(0)
	cfg, cd, err := prepareCodec(conn, testConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(conn, cd, cfg, 8)
	t0 := time.Now()
	c.win.push(flight{Probe: Probe{Seq: 0, SentAt: t0, Deadline: t0.Add(cfg.Timeout)}, keyed: true, due: t0.Add(-time.Second)})
	c.res.Sent, c.sending = 1, false
	req, err := cd.request(0, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.answer(req); err != nil { // the reply, queued on the socket before the timeout
		t.Fatal(err)
	}
	conn.stamps <- txStamp{0, t0.Add(time.Microsecond)}
	if err := c.events(context.Background(), newRxBatch()); err != nil {
		t.Fatal(err)
	}
	if len(c.res.Probes) != 1 || c.res.LateReplies != 0 {
		t.Fatalf("handed over %d probes, %d late replies; want the one, none late", len(c.res.Probes), c.res.LateReplies)
	}
	if p := c.res.Probes[0]; !p.Answered() || !p.stamped() {
		t.Errorf("probe handed over answered %v, stamped %v; want both", p.Answered(), p.stamped())
	}
}
