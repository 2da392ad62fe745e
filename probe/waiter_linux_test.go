package probe

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaiter waits on one end of a socketpair (no network): the deadline
// passes, a datagram ends the wait as ready, wake ends a long wait at once
// from another goroutine, and Close leaves no descriptor behind.
func TestWaiter(t *testing.T) {
	before := countFDs(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	open := true
	t.Cleanup(func() {
		if open {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
	})
	w, err := newWaiter(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ready, err := w.wait(20 * time.Millisecond); err != nil || ready {
		t.Fatalf("idle socket: got ready %v, %v; want the deadline", ready, err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("wait of 20ms returned after %v", took)
	}
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ready, err := w.wait(time.Hour); err != nil || !ready {
		t.Fatalf("datagram queued: got ready %v, %v; want ready", ready, err)
	}
	var buf [1]byte
	unix.Read(fds[0], buf[:])
	go func() {
		time.Sleep(10 * time.Millisecond) // before or during the wait: either must end it
		w.wake()
	}()
	start = time.Now()
	if ready, err := w.wait(time.Hour); err != nil || ready {
		t.Fatalf("woken: got ready %v, %v; want not ready", ready, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("wake ended the wait after %v", took)
	}
	// A wake just before the wait set its timer (the setting overwrites
	// the wake's expiry): the wait returns at once all the same, and only
	// that one; the next waits its time.
	w.wake()
	start = time.Now()
	if ready, err := w.wait(5 * time.Second); err != nil || ready {
		t.Fatalf("woken before the wait: got ready %v, %v; want not ready", ready, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a wake just before the wait ended it after %v, want at once", took)
	}
	start = time.Now()
	if ready, err := w.wait(20 * time.Millisecond); err != nil || ready {
		t.Fatalf("after a wake: got ready %v, %v; want the deadline", ready, err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("the wait after a woken one returned after %v, want 20ms", took)
	}
	if allocs := testing.AllocsPerRun(20, func() { w.wait(time.Microsecond) }); allocs != 0 {
		t.Errorf("a wait allocates %v times, want 0", allocs)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	unix.Close(fds[1])
	open = false
	if after := countFDs(t); after != before {
		t.Errorf("%d descriptors open after Close, %d before", after, before)
	}
}

// countFDs counts this process's open descriptors.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	return len(ents)
}

// TestWaiterClose: Close from another goroutine (the socket closed during
// a run) ends a wait in progress with an error, and the waiter then
// touches neither its descriptors nor ones reusing their numbers.
func TestWaiterClose(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	w, err := newWaiter(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.wait(time.Hour)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // the wait started, or is about to: either way it must end
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a wait ended by Close returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the wait in progress")
	}
	// The closed timerfd's number is free again: a new one likely gets it.
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tfd)
	w.wake()
	if _, err := w.wait(time.Hour); err == nil {
		t.Error("a wait after Close returned no error")
	}
	var cur unix.ItimerSpec
	if err := unix.TimerfdGettime(tfd, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Value != (unix.Timespec{}) {
		t.Errorf("the waiter set a timerfd it does not own after Close: %+v", cur.Value)
	}
}
