package probe

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadAllocs: a read of the socket allocates nothing, with no
// deadline (right after a send) or with one (the wait, the socket ready
// already): a probe takes two or three reads. The socket is a UDP one on
// loopback, which needs no privilege; another one sends to it.
func TestReadAllocs(t *testing.T) {
	s, send := loopbackPair(t)
	rx := newRxBatch()
	msg := []byte("token")
	for _, tc := range []struct {
		name     string
		deadline func() time.Time
	}{
		{"no deadline", func() time.Time { return time.Time{} }},
		{"deadline", func() time.Time { return time.Now().Add(time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func() {
				if _, err := unix.Write(send, msg); err != nil {
					t.Fatal(err)
				}
				rx.reset()
				if err := s.read(rx, tc.deadline(), time.Now); err != nil {
					t.Fatal(err)
				}
				if string(rx.msg) != string(msg) || rx.from != netip.MustParseAddr("127.0.0.1") {
					t.Fatalf("read %q from %v, want %q from 127.0.0.1", rx.msg, rx.from, msg)
				}
			}
			read() // the first read makes the socket's reader and waiter
			if allocs := testing.AllocsPerRun(100, read); allocs != 0 {
				t.Errorf("a read allocates %v times, want 0", allocs)
			}
		})
	}
	// Nothing queued (recvfrom: EAGAIN), as after most sends.
	empty := func() {
		rx.reset()
		if err := s.read(rx, time.Time{}, time.Now); err != nil || rx.msg != nil {
			t.Fatalf("read of an empty socket: %q, %v; want nothing", rx.msg, err)
		}
	}
	if allocs := testing.AllocsPerRun(100, empty); allocs != 0 {
		t.Errorf("a read of an empty socket allocates %v times, want 0", allocs)
	}
}

// loopbackPair returns a UDP socket on 127.0.0.1 as a probe socket, and
// the descriptor of a UDP socket connected to it.
func loopbackPair(t *testing.T) (*socket, int) {
	t.Helper()
	udp := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skipf("skipping, no UDP socket: %v", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			unix.Close(fd)
			t.Skipf("skipping, no loopback: %v", err)
		}
		return fd
	}
	rfd, send := udp(), udp()
	t.Cleanup(func() { unix.Close(send) })
	sa, err := unix.Getsockname(rfd)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(send, sa); err != nil {
		t.Fatal(err)
	}
	s, err := wrapFD(rawFD(rfd), "udp-loopback")
	if err != nil {
		t.Fatal(err)
	}
	s.proto, s.family = UDP, protoICMP
	t.Cleanup(func() { s.Close() })
	return s, send
}

// TestSetReadDeadlineZero: clearing the deadline (a zero time) wakes no
// wait; one that has passed ends the next wait at once.
func TestSetReadDeadlineZero(t *testing.T) {
	s, _ := loopbackPair(t)
	rx := newRxBatch()
	wait := func() time.Duration {
		rx.reset()
		start := time.Now()
		if err := s.read(rx, start.Add(20*time.Millisecond), time.Now); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read of an idle socket: %v, want %v", err, os.ErrDeadlineExceeded)
		}
		return time.Since(start)
	}
	wait() // makes the waiter
	if err := s.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if took := wait(); took < 20*time.Millisecond {
		t.Errorf("after clearing the deadline a wait of 20ms returned after %v", took)
	}
	if err := s.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if took := wait(); took >= 20*time.Millisecond {
		t.Errorf("after a deadline that passed a wait returned after %v, want at once", took)
	}
}

// TestReadSeesWhatCameBeforeTheWait: a read with a deadline waits before
// it reads, so what came in after the last read and before the wait (a
// reply, a TX stamp, an ICMP error) must end the wait at once, not be
// left for the deadline. A read of the empty socket comes first, then a
// datagram, or a send of the socket's own (its stamps), then the read;
// its deadline is far beyond anything a loaded machine takes.
func TestReadSeesWhatCameBeforeTheWait(t *testing.T) {
	s, self := loopbackProbeSocket(t)
	peer, send := loopbackPair(t)
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	rx := newRxBatch()
	empty := func() {
		t.Helper()
		for range 100 { // what earlier cases left, then nothing
			rx.reset()
			if err := s.read(rx, time.Time{}, time.Now); err != nil {
				t.Fatal(err)
			}
			if rx.msg == nil && len(rx.stamps) == 0 && len(rx.errs) == 0 {
				return
			}
		}
		t.Fatal("the socket never ran empty")
	}
	for _, tc := range []struct {
		name   string
		arrive func()
		got    func() bool
	}{
		{"datagram", func() {
			if err := unix.Sendto(send, []byte("reply"), 0, &unix.SockaddrInet4{Addr: self.Addr().As4(), Port: int(self.Port())}); err != nil {
				t.Fatal(err)
			}
		}, func() bool { return string(rx.msg) == "reply" }},
		{"TX stamps", func() {
			if _, _, err := s.sendKeyed([]byte("probe"), peerAddr, time.Now); err != nil {
				t.Fatal(err)
			}
		}, func() bool { return len(rx.stamps) > 0 }},
		{"ICMP error", func() {
			if _, _, err := s.sendKeyed([]byte("probe"), netip.AddrPortFrom(self.Addr(), closedPort(t)), time.Now); err != nil {
				t.Fatal(err)
			}
		}, func() bool { return len(rx.errs) > 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			empty()
			tc.arrive()
			const far = 10 * time.Second
			// The send's stamps may come in a read of their own before an
			// ICMP error: a few reads, none of which may wait it out.
			for range 3 {
				rx.reset()
				start := time.Now()
				if err := s.read(rx, start.Add(far), time.Now); err != nil {
					t.Fatalf("read: %v, want the %s, which came before it", err, tc.name)
				}
				if took := time.Since(start); took >= far {
					t.Fatalf("read took %v, the whole deadline", took)
				}
				if tc.got() {
					return
				}
			}
			t.Errorf("read %d stamps, %d ICMP errors, datagram %q; want the %s", len(rx.stamps), len(rx.errs), rx.msg, tc.name)
		})
	}
}

// closedPort returns a UDP port on loopback that nothing listens on: one
// a socket was just bound to and closed.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(sa.(*unix.SockaddrInet4).Port)
}
