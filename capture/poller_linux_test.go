package capture

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPollerSleep: the reader's pause sleeps on a timerfd, for its time;
// wake ends a sleep in progress; and a sleep whose stop came before its
// timer was set returns at once (the wake of that stop may have been
// overwritten by the timer's setting).
func TestPollerSleep(t *testing.T) {
	p, err := newPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	never := func() bool { return false }
	start := time.Now()
	if err := p.sleep(20*time.Millisecond, never); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("sleep of 20ms returned after %v", took)
	}
	// The reader's protocol: whoever wakes marks the stop first, and the
	// sleep looks at it once its timer is set, so a wake that comes before
	// the sleep set its timer (this goroutine delayed) is not lost.
	var stop atomic.Bool
	go func() {
		time.Sleep(10 * time.Millisecond)
		stop.Store(true)
		p.wake()
	}()
	start = time.Now()
	if err := p.sleep(time.Hour, stop.Load); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("wake ended the sleep after %v", took)
	}
	start = time.Now()
	if err := p.sleep(time.Hour, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a stopped sleep returned after %v", took)
	}
}
