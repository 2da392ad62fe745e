package probe

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// collector owns a run's state and is its one goroutine: it sends on
// schedule, reads the socket between sends, records replies as they come,
// attaches TX timestamps to their probes and hands every probe over once
// it is done with it.
type collector struct {
	conn  endpoint
	codec codec
	cfg   Config
	res   *Result
	// win holds the probes in flight, each with the OPT_ID key of its TX
	// stamps (window.byKey). Probes handed over, and earlier runs on the
	// same socket, are not in it, so their late stamps are ignored.
	win       window
	schedule  schedule
	firstSend time.Time // monotonic; zero until the first send
	sendAt    time.Time // when the next probe is due; zero: at once
	sending   bool      // more probes are to be sent
}

// newCollector starts the record of a run of cfg (prepared) on conn,
// speaking cd, with at most limit probes in flight.
func newCollector(conn endpoint, cd codec, cfg Config, limit int) *collector {
	return &collector{
		conn: conn, codec: cd, cfg: cfg, res: newResult(cfg), win: newWindow(limit),
		schedule: schedule{interval: cfg.Interval}, sending: true,
	}
}

// loop runs until every probe was sent and handed over, or ctx is done, or
// a read or a send failed; then it gives up on the probes still in flight.
func (c *collector) loop(ctx context.Context) error {
	err := c.events(ctx, newRxBatch())
	c.giveUp()
	return err
}

// events handles what happens during the run, one event at a time, on the
// run's one goroutine. Right after each send it reads the socket without
// waiting: the send's TX stamps are queued by then, and on a path of
// veths the reply often is too, the whole round trip running inside
// sendto. Otherwise it waits for the socket in the netpoller until the
// next send or the next probe due to be handed over, whichever comes
// first: one wake-up per event, none from another goroutine.
func (c *collector) events(ctx context.Context, rx *rxBatch) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.sending && !time.Now().Before(c.sendAt) {
			if err := c.send(); err != nil {
				return err
			}
			c.next()
			if _, err := c.receive(ctx, rx, time.Time{}); err != nil {
				return err
			}
			continue
		}
		if err := c.handOver(ctx, rx); err != nil {
			return err
		}
		if !c.sending && c.win.n == 0 {
			return nil
		}
		if _, err := c.receive(ctx, rx, c.wakeAt(time.Now())); err != nil {
			return err
		}
	}
}

// drainLimit bounds how many reads drain makes in one go, so that a flood
// of replies cannot hold up the sends.
const drainLimit = 256

// drain reads what the socket already holds, without waiting, so that no
// probe is handed over as unanswered or unstamped while what answers or
// stamps it waits there (the run may have been off the CPU for longer than
// a timeout or stampGrace).
func (c *collector) drain(ctx context.Context, rx *rxBatch) error {
	for range drainLimit {
		got, err := c.receive(ctx, rx, time.Time{})
		if err != nil || !got {
			return err
		}
	}
	return nil
}

// wakeAt is when the run must wake up at the latest, waiting at now: for
// the next send, for the oldest probe in flight to be handed over, or
// readSlice away.
func (c *collector) wakeAt(now time.Time) time.Time {
	at := now.Add(readSlice)
	if c.sending && c.sendAt.Before(at) {
		at = c.sendAt
	}
	if f := c.win.front(); f != nil && f.wake().Before(at) {
		at = f.wake()
	}
	return at
}

// wake is when the run stops waiting for what f still lacks: its reply,
// or once answered its TX stamps.
func (f *flight) wake() time.Time {
	if f.Answered() {
		return f.stampsDue
	}
	return f.due
}

// next schedules the next send (sendAt), or ends the sending when the
// count is reached or the next send would fall beyond the duration.
func (c *collector) next() {
	if (c.cfg.Count > 0 && c.res.Sent >= c.cfg.Count) || uint64(c.res.Sent) >= MaxCount {
		c.sending = false
		return
	}
	now := time.Now()
	wait := c.schedule.next(c.res.Sent, now)
	if c.cfg.Duration > 0 && now.Add(wait).Sub(c.firstSend) >= c.cfg.Duration {
		c.sending = false
		return
	}
	c.sendAt = now.Add(wait)
}

// handOver passes on, oldest first, every probe the run is done with:
// answered and stamped, answered and out of time for stamps, refused, or
// unanswered past its timeout. Before it gives up on one for lack of a
// reply or a stamp, it reads what the socket already holds.
func (c *collector) handOver(ctx context.Context, rx *rxBatch) error {
	now, drained := time.Now(), false
	for f := c.win.front(); f != nil && f.done(now); f = c.win.front() {
		if !f.complete() && !drained {
			if err := c.drain(ctx, rx); err != nil {
				return err
			}
			drained = true
			continue
		}
		c.retire()
	}
	return nil
}

// complete reports whether f waits for nothing more: refused, or answered
// and stamped.
func (f *flight) complete() bool {
	return f.SendErr != nil || f.Answered() && f.stamped()
}

// done reports whether the run is done with f at now.
func (f *flight) done(now time.Time) bool {
	switch {
	case f.SendErr != nil:
		return true
	case f.Answered():
		return f.stamped() || !now.Before(f.stampsDue)
	}
	return !now.Before(f.due)
}

// retire hands the oldest probe in flight over: to the Sink, or to
// Result.Probes without one.
func (c *collector) retire() {
	f := c.win.pop()
	if !f.Answered() {
		c.cfg.Progress.addUnanswered()
	}
	if c.cfg.Sink != nil {
		c.cfg.Sink(f.Probe)
		return
	}
	c.res.Probes = append(c.res.Probes, f.Probe)
}

// giveUp hands over every probe still in flight: the run stopped waiting
// for them now, which is their Deadline if it comes first.
func (c *collector) giveUp() {
	now := c.cfg.Now()
	for f := c.win.front(); f != nil; f = c.win.front() {
		if !f.Answered() && now.Before(f.Deadline) {
			f.Deadline = now
		}
		c.retire()
	}
}

// schedule keeps sends on a fixed grid, start + n*interval, so the rate
// holds even when each wake-up is late (re-arming a relative timer after
// every send gave ~800 probes/s at a 1 ms interval). A sender that is late
// catches up, sending at once, as long as it is at most one interval or
// catchUp behind, whichever is longer; further behind, it starts a new
// grid rather than sending a burst.
type schedule struct {
	start    time.Time
	interval time.Duration
}

// catchUp is how far behind the grid a sender still catches up. The run
// waits for its next send on a timerfd (waiter), to the microsecond, but a
// wake-up can still come late: the process was off the CPU, or a send
// took long. At a 500 us interval on the lab (2 vCPUs shared with other
// work), waiting on Go timers then, 20 to 37 of 4000 gaps between sends
// were 2 to 4.6 ms, a few 5 to 8 ms, and each beyond catchUp started a new
// grid: 1932-1979 probes/s with 2 ms here, 1988-1994 with 5 ms, 1999-2000
// with 10 ms. A burst after a stall is at most catchUp/interval probes,
// 20 at 500 us, sent back to back.
const catchUp = 10 * time.Millisecond

// next returns how long to wait before probe n, the first having been sent
// at start (set on the first call).
func (s *schedule) next(n int, now time.Time) time.Duration {
	if s.start.IsZero() {
		s.start = now.Add(-s.interval * time.Duration(n-1))
	}
	wait := s.start.Add(s.interval * time.Duration(n)).Sub(now)
	if wait < -max(s.interval, catchUp) {
		s.start = now.Add(-s.interval * time.Duration(n))
		return 0
	}
	return max(wait, 0)
}

// reply records r on its probe if it is in flight and in time. A reply to
// a probe past its Deadline, or already handed over, is counted late; one
// to a probe never sent, or a second one, is ignored.
func (c *collector) reply(r reply) {
	if r.low {
		seq, ok := c.resolve(r.seq)
		if !ok {
			return
		}
		r.seq = seq
	}
	f := c.win.at(r.seq)
	switch {
	case f == nil && int64(r.seq) < int64(c.res.Sent):
		c.res.LateReplies++
	case f == nil, f.Answered(), f.SendErr != nil:
	case r.at.After(f.Deadline):
		if !f.late {
			f.late = true
			c.res.LateReplies++
		}
	default:
		f.ReceivedAt, f.stampsDue = r.at, time.Now().Add(stampGrace)
		f.Reply, f.ReplyFrom, f.ReplyCode = r.kind, r.from, r.code
		c.res.Answered++
		c.cfg.Progress.addAnswered()
	}
}

// lowMask is what a TCP reply tells of its probe's sequence: the low 15
// bits (docs/probe.md: the ISN carries seq mod 32768).
const lowMask = 1<<15 - 1

// resolve returns the sequence of the newest probe sent whose low 15 bits
// are low, and false when none was. At most MaxInFlight (2^14) probes are
// in flight, all sent after any probe handed over, so a probe in flight
// with those bits is that one: a reply resolved to a probe no longer in
// flight is late, as with a full sequence.
func (c *collector) resolve(low uint32) (uint32, bool) {
	if c.res.Sent == 0 {
		return 0, false
	}
	last := uint32(c.res.Sent - 1)
	back := (last - low) & lowMask
	if back > last {
		return 0, false
	}
	return last - back, true
}

func (c *collector) stamp(s txStamp) {
	if f := c.win.byKey(s.key); f != nil {
		f.addStamp(s)
	}
}

// send sends the next probe and records it, with the OPT_ID key its TX
// stamps will carry. A probe the kernel refuses (Refused) is
// recorded as sent and never answered, and the run goes on: that refusal
// is what the run is there to find. When MaxInFlight probes are in flight
// (only a late timer can get there: Validate bounds Timeout/Interval), the
// oldest is given up on first.
func (c *collector) send() error {
	if c.win.full() {
		c.giveUpOldest()
	}
	seq := uint32(c.res.Sent)
	b, err := c.codec.request(seq, c.cfg.Now())
	if err != nil {
		return fmt.Errorf("build %s %d: %w", c.codec.what(), seq, err)
	}
	dst := c.codec.dst()
	sentAt, key, err := c.conn.sendKeyed(b, dst, c.cfg.Now)
	if err != nil && !Refused(err) {
		to := dst.String()
		if dst.Port() == 0 {
			to = dst.Addr().String()
		}
		return fmt.Errorf("send %s %d to %s: %w", c.codec.what(), seq, to, err)
	}
	now := time.Now()
	if c.firstSend.IsZero() {
		c.firstSend = now
	}
	f := flight{Probe: Probe{Seq: seq, SrcPort: c.codec.srcPort(seq), SentAt: sentAt}, due: now.Add(c.cfg.Timeout)}
	if err == nil {
		f.key, f.keyed = key, true
		f.Deadline = sentAt.Add(c.cfg.Timeout)
	} else {
		f.SendErr = err
		if f.SentAt.IsZero() {
			f.SentAt = c.cfg.Now()
		}
		f.Deadline = f.SentAt
	}
	c.win.push(f)
	c.res.Sent++
	c.cfg.Progress.addSent()
	return nil
}

// giveUpOldest hands over the oldest probe in flight before its time, its
// Deadline now.
func (c *collector) giveUpOldest() {
	if f := c.win.front(); f != nil && !f.Answered() {
		if now := c.cfg.Now(); now.Before(f.Deadline) {
			f.Deadline = now
		}
	}
	c.retire()
}

// Refused reports whether err, from sending one probe, is the local stack
// refusing that packet rather than the run being impossible: EPERM
// (netfilter or a cgroup BPF program dropped it on output, as a
// NetworkPolicy does), EACCES (a prohibit route), ENOBUFS (no buffer or a
// full queue), ENETUNREACH and EHOSTUNREACH (the route went away or was
// made unreachable during the run).
func Refused(err error) bool {
	for _, e := range []error{syscall.EPERM, syscall.EACCES, syscall.ENOBUFS, syscall.ENETUNREACH, syscall.EHOSTUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
