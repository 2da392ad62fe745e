package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// Config says what to send. Count, Interval, Timeout and Size behave like
// ping's -c, -i, -W and -s.
type Config struct {
	Target   netip.Addr    // IPv4 or IPv6; a link-local IPv6 target needs a numeric zone (fe80::1%2)
	Count    int           // probes to send, > 0
	Interval time.Duration // between sends
	Timeout  time.Duration // how long to wait for replies after the last send
	Size     int           // ICMP echo data bytes, >= TokenLen
	ID       uint16        // echo identifier; the kernel or NAT may rewrite it, so nothing matches on it
	RunID    uint64        // token run id; 0 picks a random one
	// Now is the clock for user-space times; nil means time.Now.
	Now func() time.Time
}

// readSlice bounds every read, so a finished run is noticed within it.
const readSlice = 50 * time.Millisecond

// Validate reports the first unusable field, naming the flag a user sets.
func (c Config) Validate() error {
	switch {
	case !c.Target.IsValid():
		return errors.New("no target address")
	case c.Count <= 0:
		return fmt.Errorf("count %d: must be at least 1", c.Count)
	case c.Interval < 0:
		return fmt.Errorf("interval %s: must not be negative", c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	case c.Size < TokenLen || c.Size > 65507-8:
		return fmt.Errorf("size %d: must be between %d and %d bytes", c.Size, TokenLen, 65507-8)
	}
	if _, err := zoneIndex(c.Target.Zone()); err != nil {
		return fmt.Errorf("target %s: %w", c.Target, err)
	}
	return nil
}

// prepare checks that cfg can be sent on conn and fills in the defaults:
// time.Now for Now, a random RunID for 0.
func prepare(conn Conn, cfg Config) (Config, error) {
	if conn == nil {
		return cfg, errors.New("no socket: open one with ListenFor")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if got, want := conn.icmpProto(), protoFor(cfg.Target); got != want {
		return cfg, fmt.Errorf("target %s needs an %s socket, got an %s one (open it with ListenFor)", cfg.Target, want, got)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RunID == 0 {
		cfg.RunID = NewRunID()
	}
	return cfg, nil
}

// Run sends cfg.Count echo requests on conn, one every cfg.Interval, and
// collects the replies carrying this run's token until all are in, or
// cfg.Timeout after the last send, or ctx is done. Replies of other runs and
// other ICMP messages are ignored. The requests are ICMPv6 for an IPv6
// target and ICMPv4 otherwise; conn must be of the target's family
// (ListenFor opens the right one). On cancellation it returns what it has
// together with ctx's error; on an unusable cfg or conn, no Result.
//
// Each probe also gets the kernel's TX timestamps (Probe.SchedAt,
// Probe.SoftwareAt). Once the replies are in, or timed out, Run waits up to
// 20 ms longer for stamps of answered probes still on their way; a kernel
// that gives none leaves them zero.
func Run(ctx context.Context, conn Conn, cfg Config) (*Result, error) {
	cfg, err := prepare(conn, cfg)
	if err != nil {
		return nil, err
	}
	c := newCollector(conn, cfg)
	rctx, stop := context.WithCancel(ctx)
	replies, stamps := make(chan reply, 64), make(chan txStamp, 64)
	var rerr error
	recvDone := make(chan struct{}) // closed once rerr is set
	go func() {
		defer close(recvDone)
		rerr = receive(rctx, conn, cfg, inbox{replies: replies, stamps: stamps})
	}()

	err = c.loop(ctx, replies, stamps, recvDone, &rerr)
	stop()
	<-recvDone
	if err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = fmt.Errorf("receive echo replies: %w", rerr)
	}
	return c.res, err
}

// reply is an echo reply of this run, as the receiver hands it over.
type reply struct {
	seq uint32
	at  time.Time
}

// inbox is where the receiver hands what it read to the collector.
type inbox struct {
	replies chan<- reply
	stamps  chan<- txStamp
}

// receive is a run's one reader, for every kind of socket: it reads conn
// until ctx is done and hands every TX stamp, and every echo reply carrying
// this run's token, to in. Every read has a deadline readSlice away, so
// cancellation is seen within it. A read error ends it, unless ctx is done
// by then.
func receive(ctx context.Context, conn endpoint, cfg Config, in inbox) error {
	proto, rx := protoFor(cfg.Target), newRxBatch()
	for ctx.Err() == nil {
		rx.reset()
		err := conn.read(rx, time.Now().Add(readSlice), cfg.Now)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		in.handOver(ctx, rx, proto, cfg.RunID)
	}
	return ctx.Err()
}

// handOver passes what one read got to the collector: every stamp, and the
// datagram if it is an echo reply of run runID. It gives up when ctx is
// done.
func (in inbox) handOver(ctx context.Context, rx *rxBatch, proto icmpProto, runID uint64) {
	for _, st := range rx.stamps {
		select {
		case in.stamps <- st:
		case <-ctx.Done():
			return
		}
	}
	if rx.msg == nil {
		return
	}
	if seq, ok := proto.matchReply(icmpMessage(proto, rx.msg), runID); ok {
		select {
		case in.replies <- reply{seq: seq, at: rx.at}:
		case <-ctx.Done():
		}
	}
}
