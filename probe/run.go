package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// protoConn is a socket made for one ICMP version (Listen's and
// ListenIPv6's, on Linux).
type protoConn interface {
	icmpProto() icmpProto
}

// checkConn reports a socket that cannot reach target: an ICMPv4 socket
// for an IPv6 target or the other way round.
func checkConn(conn net.PacketConn, target netip.Addr) error {
	pc, ok := conn.(protoConn)
	if !ok {
		return nil
	}
	if got, want := pc.icmpProto(), protoFor(target); got != want {
		return fmt.Errorf("target %s needs an %s socket, got an %s one (open it with ListenFor)", target, want, got)
	}
	return nil
}

// reply is an echo reply of this run, as the receiver hands it over.
type reply struct {
	seq uint32
	at  time.Time
}

// Run sends cfg.Count echo requests on conn, one every cfg.Interval, and
// collects the replies carrying this run's token until all are in, or
// cfg.Timeout after the last send, or ctx is done. Replies of other runs and
// other ICMP messages are ignored. The requests are ICMPv6 for an IPv6
// target and ICMPv4 otherwise; a socket from Listen, ListenIPv6 or
// ListenFor must be of the target's family. On cancellation it returns what it has
// together with ctx's error.
//
// On a socket from Listen, each probe also gets the kernel's TX timestamps
// (Probe.SchedAt, Probe.SoftwareAt); Run then waits up to 20 ms longer for
// stamps of answered probes still on their way. Other connections, like
// test fakes, leave them zero.
func Run(ctx context.Context, conn net.PacketConn, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkConn(conn, cfg.Target); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RunID == 0 {
		cfg.RunID = NewRunID()
	}
	c := &collector{
		conn: conn, cfg: cfg, keys: make(map[uint32]uint32, cfg.Count), schedule: schedule{interval: cfg.Interval},
		res: &Result{RunID: cfg.RunID, Target: cfg.Target.Unmap(), Size: cfg.Size, Probes: make([]Probe, 0, cfg.Count)},
	}
	c.tx, _ = conn.(txStamper)
	rctx, stop := context.WithCancel(ctx)
	replies, stamps := make(chan reply, 64), make(chan txStamp, 64)
	in := inbox{replies: replies, stamps: stamps}
	var rerr error
	recvDone := make(chan struct{}) // closed once rerr is set
	go func() {
		defer close(recvDone)
		if c.tx != nil {
			rerr = c.tx.receive(rctx, cfg, in)
		} else {
			rerr = receive(rctx, conn, cfg, in)
		}
	}()

	err := c.loop(ctx, replies, stamps, recvDone, &rerr)
	stop()
	<-recvDone
	if err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	return c.res, err
}

// receive reads until ctx is done and passes on the echo replies of this
// run. Every read has a deadline, so cancellation is seen within readSlice.
func receive(ctx context.Context, conn net.PacketConn, cfg Config, in inbox) error {
	proto := protoFor(cfg.Target)
	buf := make([]byte, 65536)
	for ctx.Err() == nil {
		if err := conn.SetReadDeadline(time.Now().Add(readSlice)); err != nil {
			return fmt.Errorf("set read deadline: %w", err)
		}
		n, _, err := conn.ReadFrom(buf)
		at := cfg.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		seq, ok := proto.matchReply(buf[:n], cfg.RunID)
		if !ok {
			continue
		}
		select {
		case in.replies <- reply{seq: seq, at: at}:
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}
