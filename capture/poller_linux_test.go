package capture

import (
	"testing"
	"time"
)

// TestPollerSleep: the reader's pause sleeps on a timerfd, for its time;
// wake ends a sleep in progress; and a sleep whose wake came before its
// timer was set returns at once (the wake's setting of the timer was
// overwritten by the sleep's), as does every one after it.
func TestPollerSleep(t *testing.T) {
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	if err := p.sleep(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("sleep of 20ms returned after %v", took)
	}
	go func() {
		time.Sleep(10 * time.Millisecond) // before or during the sleep: either must end it
		p.wake()
	}()
	start = time.Now()
	if err := p.sleep(time.Hour); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("wake ended the sleep after %v", took)
	}

	q, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.wake()
	start = time.Now()
	if err := q.sleep(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a sleep after a wake returned after %v, want at once", took)
	}
	if err := q.sleep(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a second sleep after a wake returned after %v, want at once", took)
	}
}

// TestPollerWait: with no deadline a wait ends at a wake, in progress or
// before it, and so does every later one; with a deadline it keeps its
// deadline through a wake (the drain), and through an expiry an earlier
// sleep left.
func TestPollerWait(t *testing.T) {
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	if ev, err := p.wait(start.Add(20 * time.Millisecond)); err != nil || len(ev) != 0 {
		t.Fatalf("wait of 20ms: got %v, %v; want no events", ev, err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("wait of 20ms returned after %v", took)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		p.wake()
	}()
	start = time.Now()
	if ev, err := p.wait(time.Time{}); err != nil || len(ev) != 0 {
		t.Fatalf("woken: got %v, %v; want no events", ev, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("wake ended the wait after %v", took)
	}
	start = time.Now()
	if ev, err := p.wait(time.Time{}); err != nil || len(ev) != 0 {
		t.Fatalf("after a wake: got %v, %v; want no events", ev, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a wait after a wake returned after %v, want at once", took)
	}
	// Wakes during the drain's wait each overwrite its timer with theirs.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for range 5 {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
				p.wake()
			}
		}
	}()
	start = time.Now()
	if ev, err := p.wait(start.Add(20 * time.Millisecond)); err != nil || len(ev) != 0 {
		t.Fatalf("drain wait: got %v, %v; want no events", ev, err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("a wait with a deadline of 20ms after a wake returned after %v", took)
	}
}

// TestPollerWaitsWithoutAllocating: the reader's sleep, wait and ready,
// which run at every scan, make no heap allocation (the funcs they hand
// the descriptors are made once, by newPoller), and the waits are
// counted.
func TestPollerWaitsWithoutAllocating(t *testing.T) {
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const runs = 50
	allocs := testing.AllocsPerRun(runs, func() {
		if err := p.sleep(50 * time.Microsecond); err != nil {
			t.Fatal(err)
		}
		if _, err := p.wait(time.Now().Add(50 * time.Microsecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ready(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a sleep, a wait and a ready took %v heap allocations, want none", allocs)
	}
	if p.waits < 2*runs {
		t.Errorf("counted %d waits for %d sleeps and as many waits, want at least as many", p.waits, runs)
	}
}
