package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
)

// echoConn is a fake Conn that answers echo requests like a peer would,
// with knobs for loss, duplicates and foreign traffic. It speaks ICMPv4
// unless proto says otherwise, and refuses other messages. Its replies read
// like a raw socket's: ICMPv4 ones behind an IPv4 header, ICMPv6 ones bare.
// Like a kernel that gives no TX timestamps, it reports none unless stamps
// is set (stampConn does).
type echoConn struct {
	proto    icmpProto // 0 means protoICMP
	queue    chan []byte
	stamps   chan txStamp // read like the error queue; nil: no stamps ever
	mu       sync.Mutex
	sent     int
	nextKey  uint32
	drop     func(seq int) bool // request seq -> no reply
	extra    func(req *icmp.Echo) [][]byte
	readErr  error               // returned by every read, when set
	writeErr func(seq int) error // request seq -> the error the send returns, if any
	// overflow makes a full queue drop replies and count them, as a full
	// receive buffer does, instead of making the send wait.
	overflow bool
	drops    atomic.Uint64
	late     time.Duration // replies come this long after their request
}

// The fakes drive Run through the methods the real socket implements.
var (
	_ Conn = (*echoConn)(nil)
	_ Conn = (*stampConn)(nil)
	_ Conn = familyConn{}
)

func newEchoConn() *echoConn { return &echoConn{queue: make(chan []byte, 1024)} }

func (c *echoConn) icmpProto() icmpProto {
	if c.proto == 0 {
		return protoICMP
	}
	return c.proto
}

// codec is the socket's: ICMP of the fake's family.
func (c *echoConn) codec(cfg Config) (codec, error) { return newICMPCodec(c.icmpProto(), cfg) }

// sendKeyed times the send like the socket does and numbers every send,
// failed or not.
func (c *echoConn) sendKeyed(b []byte, _ netip.AddrPort, now func() time.Time) (time.Time, uint32, error) {
	at := now()
	c.mu.Lock()
	key := c.nextKey
	c.nextKey++
	c.mu.Unlock()
	return at, key, c.answer(b)
}

// answer is the fake peer: it queues the reply to the echo request b, and
// whatever extra adds.
func (c *echoConn) answer(b []byte) error {
	p := c.icmpProto()
	m, err := icmp.ParseMessage(int(p), b)
	if err != nil {
		return err
	}
	echo, ok := m.Body.(*icmp.Echo)
	if want, _ := p.echoTypes(); !ok || m.Type != want {
		return fmt.Errorf("fake %s peer: got a %v, want an echo request", p, m.Type)
	}
	if c.writeErr != nil {
		if err := c.writeErr(echo.Seq); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
	if c.extra != nil {
		for _, x := range c.extra(echo) {
			c.queue <- x
		}
	}
	if c.drop == nil || !c.drop(echo.Seq) {
		m := marshalReply(p, echo)
		if c.late > 0 {
			time.AfterFunc(c.late, func() { c.enqueue(m) })
		} else {
			c.enqueue(m)
		}
	}
	return nil
}

// enqueue queues a reply, or with overflow drops it when the queue is
// full.
func (c *echoConn) enqueue(m []byte) {
	if !c.overflow {
		c.queue <- m
		return
	}
	select {
	case c.queue <- m:
	default:
		c.drops.Add(1)
	}
}

func (c *echoConn) rxDrops() (uint64, bool) { return c.drops.Load(), true }

// marshalReply is the echo reply to e as ICMP for p, without IP header,
// and with a zero checksum for ICMPv6 (no pseudo-header).
func marshalReply(p icmpProto, e *icmp.Echo) []byte {
	_, typ := p.echoTypes()
	b, _ := (&icmp.Message{Type: typ, Body: e}).Marshal(nil)
	return b
}

// read hands over one stamp or one queued message, as the socket's read
// would, until deadline.
func (c *echoConn) read(rx *rxBatch, deadline time.Time, now func() time.Time) error {
	if c.readErr != nil {
		return c.readErr
	}
	select {
	case s := <-c.stamps:
		rx.stamps = append(rx.stamps, s)
		return nil
	case m := <-c.queue:
		c.deliver(rx, m, now)
		return nil
	default:
		if deadline.IsZero() {
			return nil // not to wait
		}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case s := <-c.stamps:
		rx.stamps = append(rx.stamps, s)
	case m := <-c.queue:
		c.deliver(rx, m, now)
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
	return nil
}

// deliver puts message m into rx as the socket reads it.
func (c *echoConn) deliver(rx *rxBatch, m []byte, now func() time.Time) {
	if c.icmpProto() == protoICMP {
		m = withIPv4Header(m)
	}
	rx.msg, rx.at = rx.buf[:copy(rx.buf, m)], now()
}

// withIPv4Header puts the IPv4 header a raw IPv4 socket reads in front of
// the ICMP message m: IP[ICMP], 45 00 <len> 00 00 00 00 40 01 00 00
// 0a f4 02 02 0a f4 01 05 (10.244.2.2 -> 10.244.1.5, TTL 64, checksum left
// zero).
func withIPv4Header(m []byte) []byte {
	h := make([]byte, 20, 20+len(m))
	h[0], h[8], h[9] = 0x45, 64, byte(protoICMP)
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(m)))
	copy(h[12:], []byte{10, 244, 2, 2, 10, 244, 1, 5})
	return append(h, m...)
}

// The rest of net.PacketConn: Run never calls ReadFrom or WriteTo.
func (c *echoConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	return 0, errors.New("fake: Run sends with sendKeyed")
}
func (c *echoConn) ReadFrom([]byte) (int, net.Addr, error) {
	return 0, nil, errors.New("fake: Run reads with read")
}
func (c *echoConn) Close() error                     { return nil }
func (c *echoConn) LocalAddr() net.Addr              { return &net.IPAddr{} }
func (c *echoConn) SetDeadline(time.Time) error      { return nil }
func (c *echoConn) SetReadDeadline(time.Time) error  { return nil }
func (c *echoConn) SetWriteDeadline(time.Time) error { return nil }

func testConfig(count int) Config {
	return Config{
		Target: netip.MustParseAddr("10.244.2.2"), Count: count, Interval: time.Millisecond,
		Timeout: 200 * time.Millisecond, Size: 56, ID: 7, RunID: 0x1234,
	}
}

func TestRunAllAnswered(t *testing.T) {
	conn := newEchoConn()
	res, err := Run(context.Background(), conn, testConfig(20))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Probes); got != 20 {
		t.Fatalf("got %d probes, want 20", got)
	}
	for i, p := range res.Probes {
		if p.Seq != uint32(i) || !p.Answered() || p.RTT() < 0 {
			t.Errorf("probe %d: got seq %d answered %v rtt %v", i, p.Seq, p.Answered(), p.RTT())
		}
		// A kernel that gives no stamps leaves SchedAt zero.
		if !p.SchedAt.IsZero() {
			t.Errorf("probe %d: got SchedAt %v without stamps, want zero", i, p.SchedAt)
		}
	}
}

func TestRunLossDuplicatesAndForeignReplies(t *testing.T) {
	conn := newEchoConn()
	conn.drop = func(seq int) bool { return seq%3 == 0 }
	conn.extra = func(req *icmp.Echo) [][]byte {
		p, _ := ParsePayload(req.Data)
		other := *req
		other.Data = Payload{RunID: 0x9999, Seq: p.Seq}.Marshal(56) // another run's reply
		plain := *req
		plain.Data = []byte("not a probe at all, iputils ping!")
		out := [][]byte{marshalReply(protoICMP, &other), marshalReply(protoICMP, &plain)}
		if p.Seq == 1 {
			out = append(out, marshalReply(protoICMP, req)) // a duplicate of seq 1
		}
		return out
	}
	res, err := Run(context.Background(), conn, testConfig(9))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Probes {
		if want := p.Seq%3 != 0; p.Answered() != want {
			t.Errorf("probe %d: answered %v, want %v", p.Seq, p.Answered(), want)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	conn := newEchoConn()
	conn.drop = func(int) bool { return true }
	cfg := testConfig(1000)
	cfg.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, conn, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got error %v, want context.DeadlineExceeded", err)
	}
	if n := len(res.Probes); n == 0 || n >= 1000 {
		t.Errorf("got %d probes sent before cancel, want some but not all", n)
	}
}

// TestRunReturnsReceiveError: a read error ends the run with that error
// (it used to be taken off its channel twice, and Run hung).
func TestRunReturnsReceiveError(t *testing.T) {
	conn := newEchoConn()
	conn.readErr = syscall.EHOSTUNREACH
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), conn, testConfig(3))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Errorf("got %v, want EHOSTUNREACH", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of a read error")
	}
}

// TestRunRecordsRefusedSends: a probe the kernel refuses (a netfilter drop
// on output returns EPERM) is recorded unanswered with its error and the
// run goes on; any other send error ends the run.
func TestRunRecordsRefusedSends(t *testing.T) {
	conn := newEchoConn()
	conn.writeErr = func(seq int) error {
		if seq%3 == 1 {
			return os.NewSyscallError("sendto", syscall.EPERM)
		}
		return nil
	}
	res, err := Run(context.Background(), conn, testConfig(9))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Probes) != 9 {
		t.Fatalf("got %d probes, want 9", len(res.Probes))
	}
	for i, p := range res.Probes {
		refused := i%3 == 1
		if got := p.SendErr != nil; got != refused || p.Answered() == refused || p.SentAt.IsZero() {
			t.Errorf("probe %d: SendErr %v, answered %v, SentAt %v; want refused %v, answered %v and a send time", i, p.SendErr, p.Answered(), p.SentAt, refused, !refused)
		}
		if refused && !errors.Is(p.SendErr, syscall.EPERM) {
			t.Errorf("probe %d: SendErr %v, want EPERM", i, p.SendErr)
		}
	}

	conn = newEchoConn()
	conn.writeErr = func(int) error { return syscall.EBADF }
	if _, err := Run(context.Background(), conn, testConfig(3)); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Run with EBADF on send: got %v, want EBADF", err)
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{syscall.EPERM, true}, {os.NewSyscallError("sendto", syscall.EACCES), true}, {syscall.ENOBUFS, true},
		{syscall.ENETUNREACH, true}, {syscall.EHOSTUNREACH, true},
		{syscall.EBADF, false}, {syscall.EINVAL, false}, {errors.New("other"), false}, {nil, false},
	} {
		if got := Refused(c.err); got != c.want {
			t.Errorf("Refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(1)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no target", func(c *Config) { c.Target = netip.Addr{} }},
		{"zone name", func(c *Config) { c.Target = netip.MustParseAddr("fe80::1%eth0") }},
		{"count 0", func(c *Config) { c.Count = 0 }},
		{"negative interval", func(c *Config) { c.Interval = -1 }},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }},
		{"size too small", func(c *Config) { c.Size = TokenLen - 1 }},
	} {
		c := ok
		tc.mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tc.name, c)
		}
	}
	for _, target := range []string{"10.244.2.2", "::ffff:10.244.2.2", "fd00::1", "fe80::1%2"} {
		c := ok
		c.Target = netip.MustParseAddr(target)
		if err := c.Validate(); err != nil {
			t.Errorf("valid config with target %s rejected: %v", target, err)
		}
	}
}

// TestRunEndsOnItsLastProbe: Run returns as soon as its last probe is
// answered and stamped, without sleeping out a read deadline (the receiver
// it had once did, 50 ms after every run, twice in a short trace). Each
// try is timed from the Sink's hand-over of the last probe to Run's
// return, and the best of three must stay under half a read slice: a
// sleep of a whole one fails every try, a loaded machine at most some.
func TestRunEndsOnItsLastProbe(t *testing.T) {
	best := time.Hour
	for range 3 {
		cfg := testConfig(5)
		var last time.Time
		cfg.Sink = func(p Probe) {
			if !p.Answered() || !p.stamped() {
				t.Errorf("probe %d handed over answered %v, stamped %v; want both", p.Seq, p.Answered(), p.stamped())
			}
			last = time.Now()
		}
		if _, err := Run(context.Background(), newStampConn(0), cfg); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(last))
	}
	if best >= readSlice/2 {
		t.Errorf("Run returned %v after its last probe was handed over, want well under %v", best, readSlice)
	}
}
