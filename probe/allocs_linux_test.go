package probe

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// probeAllocs returns what one probe on conn allocates on average, as the
// run's loop makes it: the send, the read right after it, reads with a
// deadline until the probe is answered and stamped, the hand-over to the
// Sink. It fails t unless every probe was answered and stamped, each
// within 5 s.
func probeAllocs(t *testing.T, conn Conn, cfg Config) float64 {
	t.Helper()
	cfg = allocsRun(cfg)
	handed, complete := 0, 0
	cfg.Sink = func(p Probe) {
		handed++
		if p.Answered() && p.stamped() {
			complete++
		}
	}
	cfg, cd, err := prepareCodec(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(conn, cd, cfg, MaxInFlight)
	rx, ctx := newRxBatch(), context.Background()
	one := func() {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		limit := time.Now().Add(5 * time.Second)
		for wait := (time.Time{}); !c.win.front().complete() && time.Now().Before(limit); wait = limit {
			if _, err := c.receive(ctx, rx, wait); err != nil {
				t.Fatal(err)
			}
		}
		c.retire()
	}
	one() // makes the socket's reader, waiter and send callback, and the window's ring
	allocs := testing.AllocsPerRun(50, one)
	if handed != 52 || complete != handed { // AllocsPerRun calls one once more first
		t.Errorf("%d probes handed over, %d of them answered and stamped; want 52 and all", handed, complete)
	}
	return allocs
}

// allocsRun is cfg as probeAllocs runs it: probes enough for any test,
// 1 ms apart, 100 ms of timeout (Open sizes a TCP port block by them).
func allocsRun(cfg Config) Config {
	cfg.Count, cfg.Interval, cfg.Timeout, cfg.RunID = 1<<20, time.Millisecond, 100*time.Millisecond, 0x5a5a
	return cfg
}

// TestProbeAllocs: in steady state a probe allocates nothing, from
// building its request to handing it over answered and stamped. The
// socket is a UDP probe socket on loopback, which needs no privilege,
// probing itself: every probe is its own echo (TestPrivilegedProbeAllocs
// does ICMP, TCP and ICMP errors).
func TestProbeAllocs(t *testing.T) {
	s, self := loopbackProbeSocket(t)
	cfg := Config{Target: self.Addr(), Proto: UDP, Port: int(self.Port()), Size: 56}
	if n := probeAllocs(t, s, cfg); n != 0 {
		t.Errorf("a probe allocates %v times, want 0", n)
	}
}

// loopbackProbeSocket returns a UDP probe socket on 127.0.0.1, set up as
// Open's (IP_RECVERR, TX stamps), and its address.
func loopbackProbeSocket(t *testing.T) (*socket, netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("UDP socket: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		t.Fatalf("bind to loopback: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err == nil {
		err = setUDPOptions(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	s, err := wrapFD(rawFD(fd), "udp-loopback-probe")
	if err != nil {
		t.Fatal(err)
	}
	s.proto, s.family, s.recverr = UDP, protoICMP, true
	t.Cleanup(func() { s.Close() })
	return s, netip.AddrPortFrom(sockaddrAddr(sa), uint16(sa.(*unix.SockaddrInet4).Port))
}
