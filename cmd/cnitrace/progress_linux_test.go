package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
)

// syncBuffer is a bytes.Buffer the progress goroutine and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressLineSaysWhereTheRunIs(t *testing.T) {
	pr := &progress{p: &probe.Progress{}, total: 30 * time.Second}
	got := pr.line(12*time.Second + 400*time.Millisecond)
	want := "cnitrace: 0 sent, 0 answered, 0 unanswered so far; 12s elapsed, about 18s left"
	if got != want {
		t.Errorf("line: got %q, want %q", got, want)
	}
	pr.total = 0 // unknown length: no time left shown
	if got := pr.line(time.Second); strings.Contains(got, "left") {
		t.Errorf("line with no known length: got %q, want no time left", got)
	}
}

func TestExpectedLength(t *testing.T) {
	for _, tt := range []struct {
		cfg  probe.Config
		want time.Duration
	}{
		{probe.Config{Count: 30, Interval: 100 * time.Millisecond, Timeout: time.Second}, 3900 * time.Millisecond},
		{probe.Config{Duration: time.Minute, Interval: time.Second, Timeout: time.Second}, 61 * time.Second},
		{probe.Config{Count: 10, Duration: time.Minute, Interval: time.Second, Timeout: time.Second}, 10 * time.Second},
		{probe.Config{Count: 1000, Duration: time.Second, Interval: 10 * time.Millisecond, Timeout: time.Second}, 2 * time.Second},
	} {
		if got := expectedLength(tt.cfg); got != tt.want {
			t.Errorf("expectedLength(count %d, duration %s, interval %s): got %s, want %s", tt.cfg.Count, tt.cfg.Duration, tt.cfg.Interval, got, tt.want)
		}
	}
}

// Not on a terminal, progress is plain lines: no carriage return, no
// escape sequence, one line per tick.
func TestProgressPlainLines(t *testing.T) {
	var w syncBuffer
	pr := &progress{w: &w, p: &probe.Progress{}, start: time.Now(), now: time.Now, first: 5 * time.Millisecond, every: 5 * time.Millisecond}
	stop := pr.begin()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(w.String(), "\n") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	out := w.String()
	if n := strings.Count(out, "\n"); n < 3 {
		t.Fatalf("got %d progress lines in 10s, want at least 3: %q", n, out)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("plain progress has control characters: %q", out)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(l, "cnitrace: ") || !strings.Contains(l, "sent") {
			t.Errorf("progress line %q: want 'cnitrace: N sent, ...'", l)
		}
	}
}

// On a terminal the line is redrawn in place and cleared at the end, so
// that what follows starts on a clean line.
func TestProgressLiveLineIsCleared(t *testing.T) {
	var w syncBuffer
	pr := &progress{w: &w, live: true, p: &probe.Progress{}, start: time.Now(), now: time.Now, first: time.Millisecond, every: time.Millisecond}
	stop := pr.begin()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.String(), "sent") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	out := w.String()
	if !strings.HasPrefix(out, "\r\x1b[Kcnitrace: ") || !strings.HasSuffix(out, "\r\x1b[K") || strings.Contains(out, "\n") {
		t.Errorf("live progress: got %q, want redraws ending in a cleared line, no newline", out)
	}
}

func TestQuietPrintsNothing(t *testing.T) {
	var w syncBuffer
	stop := startProgress(&w, true, probe.Config{Count: 1, Interval: time.Millisecond, Timeout: time.Millisecond}, &probe.Progress{})
	stop()
	if w.String() != "" {
		t.Errorf("--quiet: got %q on stderr, want nothing", w.String())
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Errorf("a pipe is a terminal, want not")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Errorf("a buffer is a terminal, want not")
	}
	pty := openPTY(t)
	if !isTerminal(pty) {
		t.Errorf("a pseudo-terminal %s is not a terminal, want one", pty.Name())
	}
}

// openPTY opens a pseudo-terminal and returns its terminal end.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return slave
}
