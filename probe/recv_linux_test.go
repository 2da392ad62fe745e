package probe

import (
	"errors"
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
