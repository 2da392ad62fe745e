package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Config says what to send. Count, Interval, Timeout and Size behave like
// ping's -c, -i, -W and -s; Duration like ping's -w.
type Config struct {
	Target netip.Addr // IPv4 or IPv6; a link-local IPv6 target needs a numeric zone (fe80::1%2)
	// Proto is what to send: ICMP echo requests (the zero value), TCP
	// SYNs or UDP datagrams. Open opens the socket it needs.
	Proto Proto
	// Port is the target port of TCP and UDP probes, 1 to 65535; it must
	// be 0 for ICMP. UDP probes to port 53 are DNS queries.
	Port int
	// DNSSuffix is the domain the question name of a DNS probe (UDP to
	// port 53) ends in, after the label carrying the token; "" means
	// DefaultDNSSuffix. It must be a zone the DNS server answers itself,
	// without forwarding the query out of the cluster.
	DNSSuffix string
	// Count is how many probes to send, at most MaxCount; 0 means no limit,
	// and then Duration must be set. With both, the first reached stops
	// the sending.
	Count int
	// Duration is how long to send for, from the first send; 0 means no
	// limit, and then Count must be set.
	Duration time.Duration
	// Interval is the time between sends, at least MinInterval when more
	// than one probe is sent.
	Interval time.Duration
	// Timeout is how long each probe waits for its reply, from its send:
	// a reply read later answers nothing (Result.LateReplies). The run
	// ends at the latest Timeout after the last send. Timeout/Interval
	// may not exceed MaxInFlight.
	Timeout time.Duration
	Size    int    // ICMP echo data or UDP payload bytes, >= TokenLen; TCP SYNs and DNS queries have a size of their own
	ID      uint16 // echo identifier; the kernel or NAT may rewrite it, so nothing matches on it
	RunID   uint64 // token run id; 0 picks a random one
	// Now is the clock for user-space times; nil means time.Now.
	Now func() time.Time
	// Sink, when set, receives every probe once the run is done with it
	// (answered and stamped, or given up on), in sequence order, on the
	// run's goroutine; Result.Probes then stays empty, so a run of any
	// length holds at most MaxInFlight probes. It should return quickly:
	// the next send waits for it.
	Sink func(Probe)
	// Progress, when set, is kept up to date as the run goes, for a live
	// progress line; it costs one atomic add per event.
	Progress *Progress
}

// Bounds of a run, whatever its Config.
const (
	// MinInterval is the shortest Interval between probes: at most 10,000
	// probes a second. At that rate the probe socket's receive buffer
	// (sized at Listen) holds the replies and TX stamps of more than a
	// tenth of a second of probes, so a reader delayed that long drops
	// nothing (docs/probe.md, "Rate and buffers").
	MinInterval = 100 * time.Microsecond
	// MaxInFlight is the most probes a run holds at once: sent, and not
	// yet answered and stamped or given up on. Config.Validate refuses a
	// Timeout that would need more at the Interval asked for.
	MaxInFlight = 1 << 14
	// MaxCount is the most probes one run sends: sequence numbers are 32
	// bits.
	MaxCount = math.MaxUint32
)

// readSlice bounds every wait for the socket, whatever wakes it or not.
const readSlice = 50 * time.Millisecond

// Validate reports the first unusable field, naming the flag a user sets.
func (c Config) Validate() error {
	switch {
	case !c.Target.IsValid():
		return errors.New("no target address")
	case c.Count < 0 || uint64(c.Count) > MaxCount:
		return fmt.Errorf("count %d: must be between 1 and %d", c.Count, uint64(MaxCount))
	case c.Duration < 0:
		return fmt.Errorf("duration %s: must not be negative", c.Duration)
	case c.Count == 0 && c.Duration == 0:
		return errors.New("count 0: must be at least 1, or 0 with a duration (no count limit)")
	case c.Interval < 0:
		return fmt.Errorf("interval %s: must not be negative", c.Interval)
	case c.Interval < MinInterval && c.Count != 1:
		return fmt.Errorf("interval %s: must be at least %dus (at most %d probes a second)", c.Interval, MinInterval.Microseconds(), time.Second/MinInterval)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	case c.Count != 1 && c.Timeout/c.Interval >= MaxInFlight:
		return fmt.Errorf("timeout %s: at interval %s up to %d probes would wait for replies at once, at most %d may (shorten the timeout or lengthen the interval)",
			c.Timeout, c.Interval, c.Timeout/c.Interval, MaxInFlight)
	case c.Size < TokenLen || c.Size > 65507-8:
		return fmt.Errorf("size %d: must be between %d and %d bytes", c.Size, TokenLen, 65507-8)
	}
	if _, err := zoneIndex(c.Target.Zone()); err != nil {
		return fmt.Errorf("target %s: %w", c.Target, err)
	}
	return c.validateProto()
}

// validateProto checks the fields that depend on Proto.
func (c Config) validateProto() error {
	switch c.Proto {
	case ICMP:
		if c.Port != 0 {
			return fmt.Errorf("port %d: only tcp and udp probes have a port", c.Port)
		}
	case TCP, UDP:
		if c.Port < 1 || c.Port > 65535 {
			return fmt.Errorf("port %d: %s probes need one between 1 and 65535", c.Port, c.Proto)
		}
	default:
		return fmt.Errorf("proto %d: want icmp, tcp or udp", uint8(c.Proto))
	}
	if c.Proto == TCP {
		if _, err := tcpPorts(c); err != nil {
			return err
		}
	}
	if c.DNSSuffix != "" {
		if err := checkDNSSuffix(c.DNSSuffix); err != nil {
			return fmt.Errorf("dns suffix %q: %w", c.DNSSuffix, err)
		}
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RunID == 0 {
		cfg.RunID = NewRunID()
	}
	if cfg.DNSSuffix == "" {
		cfg.DNSSuffix = DefaultDNSSuffix
	}
	return cfg, nil
}

// prepareCodec is prepare, and the codec conn makes for the run.
func prepareCodec(conn Conn, cfg Config) (Config, codec, error) {
	cfg, err := prepare(conn, cfg)
	if err != nil {
		return cfg, nil, err
	}
	cd, err := conn.codec(cfg)
	return cfg, cd, err
}

// Run sends echo requests on conn, one every cfg.Interval, until
// cfg.Count are sent or cfg.Duration has passed, and collects the replies
// carrying this run's token; each probe waits cfg.Timeout for its reply.
// It returns once every probe is answered or given up on, or ctx is done.
// Replies of other runs and other ICMP messages are ignored. The requests
// are ICMPv6 for an IPv6 target and ICMPv4 otherwise; conn must be of the
// target's family (ListenFor opens the right one). On cancellation it
// returns what it has together with ctx's error, every probe still in
// flight handed over as given up on; on an unusable cfg or conn, no
// Result.
//
// Each probe also gets the kernel's TX timestamp (Probe.SchedAt). An
// answered probe waits up to 20 ms longer for a stamp still on its way; a
// kernel that gives none leaves it zero.
//
// Memory does not grow with the run when cfg.Sink is set: Run holds the
// probes in flight only, at most MaxInFlight, and hands each to the Sink
// when it is done with it.
func Run(ctx context.Context, conn Conn, cfg Config) (*Result, error) {
	return run(ctx, conn, cfg, MaxInFlight)
}

// run is Run with at most limit probes in flight.
func run(ctx context.Context, conn Conn, cfg Config, limit int) (*Result, error) {
	cfg, cd, err := prepareCodec(conn, cfg)
	if err != nil {
		return nil, err
	}
	c := newCollector(conn, cd, cfg, limit)
	before, counted := conn.rxDrops()
	// A read waiting when ctx is done returns at once, and so does one
	// just setting its timer (the waiter keeps the wake for it).
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	err = c.loop(ctx)
	stop()
	if after, ok := conn.rxDrops(); counted && ok && after >= before {
		c.res.SocketDrops = after - before
	}
	return c.res, err
}

// repliesName names what a run of p reads, as its errors say.
func repliesName(p Proto) string {
	if p == ICMP {
		return "echo replies"
	}
	return strings.ToUpper(p.String()) + " replies"
}

// receive reads the socket once into rx, waiting until deadline at most
// for something to come (a zero deadline: not at all), and applies what
// it read. It reports whether it read anything. A read error ends the
// run, as ctx's error if ctx is done by then.
func (c *collector) receive(ctx context.Context, rx *rxBatch, deadline time.Time) (bool, error) {
	rx.reset()
	err := c.conn.read(rx, deadline, c.cfg.Now)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	case err != nil && ctx.Err() != nil:
		return false, ctx.Err()
	case err != nil:
		return false, fmt.Errorf("receive %s: %w", repliesName(c.cfg.Proto), err)
	}
	c.apply(rx)
	return len(rx.stamps) > 0 || len(rx.errs) > 0 || rx.msg != nil, nil
}

// apply records what one read got: every stamp, and every ICMP error and
// the datagram that the codec recognises as an answer to this run.
func (c *collector) apply(rx *rxBatch) {
	for _, st := range rx.stamps {
		c.stamp(st)
	}
	for _, e := range rx.errs {
		if r, ok := c.codec.matchErr(e); ok {
			r.at = e.at
			c.reply(r)
		}
	}
	if rx.msg == nil {
		return
	}
	if r, ok := c.codec.match(rx.msg, rx.from); ok {
		r.at = rx.at
		c.reply(r)
	}
}
