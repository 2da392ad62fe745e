package probe

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// collector owns a run's state: it sends on schedule, records replies as
// they come, attaches TX timestamps to their probes and hands every probe
// over once it is done with it. Only its goroutine touches it, so the
// receiver hands everything over through channels.
type collector struct {
	conn  endpoint
	codec codec
	cfg   Config
	res   *Result
	win   window // the probes in flight
	// keys maps the OPT_ID key of every probe in flight to its sequence.
	// Keys of probes handed over, and of earlier runs on the same socket,
	// are not in it, so their late stamps are ignored.
	keys      map[uint32]uint32
	schedule  schedule
	firstSend time.Time // monotonic; zero until the first send
	sending   bool      // more probes are to be sent
}

// newCollector starts the record of a run of cfg (prepared) on conn,
// speaking cd, with at most limit probes in flight.
func newCollector(conn endpoint, cd codec, cfg Config, limit int) *collector {
	return &collector{
		conn: conn, codec: cd, cfg: cfg, res: newResult(cfg), win: newWindow(limit),
		keys: map[uint32]uint32{}, schedule: schedule{interval: cfg.Interval}, sending: true,
	}
}

// feed is what the receiver hands the collector: replies and stamps as
// they are read, and, once it stopped, its error in err when done is
// closed.
type feed struct {
	replies <-chan reply
	stamps  <-chan txStamp
	done    <-chan struct{}
	err     *error
}

// loop runs until every probe was sent and handed over, or ctx is done, or
// the receiver or a send failed; then it gives up on the probes still in
// flight.
func (c *collector) loop(ctx context.Context, in feed) error {
	send := time.NewTimer(0)
	defer send.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	err := c.events(ctx, in, send, wake)
	c.giveUp()
	return err
}

// events handles what happens during the run, one event at a time: send
// is the send timer, wake the timer of the oldest probe in flight.
func (c *collector) events(ctx context.Context, in feed, send, wake *time.Timer) error {
	for {
		c.drain(in)
		c.handOver(time.Now())
		if !c.sending && c.win.n == 0 {
			return nil
		}
		c.arm(wake)
		sendC := send.C
		if !c.sending {
			sendC = nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-in.done:
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("receive %s: %w", repliesName(c.cfg.Proto), *in.err)
		case r := <-in.replies:
			c.reply(r)
		case s := <-in.stamps:
			c.stamp(s)
		case <-wake.C:
		case <-sendC:
			if err := c.send(); err != nil {
				return err
			}
			c.next(send)
		}
	}
}

// drainLimit bounds how much drain takes in one go, so that a flood of
// replies cannot hold up the sends.
const drainLimit = 256

// drain applies the replies and stamps the receiver already handed over,
// so that no probe is handed over as unanswered or unstamped while what
// answers or stamps it waits in a channel (the collector may have been
// off the CPU for longer than a timeout or stampGrace).
func (c *collector) drain(in feed) {
	for range drainLimit {
		select {
		case r := <-in.replies:
			c.reply(r)
		case s := <-in.stamps:
			c.stamp(s)
		default:
			return
		}
	}
}

// next schedules the next send on t, or ends the sending when the count
// is reached or the next send would fall beyond the duration.
func (c *collector) next(t *time.Timer) {
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
	t.Reset(wait)
}

// arm sets t to fire when the oldest probe in flight is due to be handed
// over, if nothing else happens first.
func (c *collector) arm(t *time.Timer) {
	f := c.win.front()
	if f == nil {
		t.Stop()
		return
	}
	due := f.due
	if f.Answered() {
		due = f.stampsDue
	}
	t.Reset(max(time.Until(due), 0))
}

// handOver passes on, oldest first, every probe the run is done with at
// now: answered and stamped, answered and out of time for stamps, refused,
// or unanswered past its timeout.
func (c *collector) handOver(now time.Time) {
	for f := c.win.front(); f != nil && f.done(now); f = c.win.front() {
		c.retire()
	}
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
	if f.keyed {
		delete(c.keys, f.key)
	}
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

// catchUp is how far behind the grid a sender still catches up. Go's
// timers sleep at least a millisecond when the process is otherwise idle
// (the netpoller waits in whole milliseconds), so below a millisecond
// probes go out in bursts of up to catchUp/interval that keep the rate:
// at a 200 us interval one wake-up about every millisecond sends five.
const catchUp = 2 * time.Millisecond

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
	if seq, ok := c.keys[s.key]; ok {
		if f := c.win.at(seq); f != nil {
			f.addStamp(s)
		}
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
	f := flight{Probe: Probe{Seq: seq, SentAt: sentAt}, due: now.Add(c.cfg.Timeout)}
	if err == nil {
		f.key, f.keyed = key, true
		c.keys[key] = seq
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
