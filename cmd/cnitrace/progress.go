package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
)

// How often the progress line shows. On a terminal it appears once a run
// has gone on for liveAfter and is redrawn in place every liveEvery; not on
// a terminal (a log, a pipe), a plain line is printed every plainEvery, so
// that a long run in a CI log or a kubectl debug session shows it is alive
// without flooding it.
const (
	liveAfter  = 2 * time.Second
	liveEvery  = 250 * time.Millisecond
	plainEvery = 10 * time.Second
)

// progress prints the live progress line of a run on stderr: probes
// sent, answered and unanswered so far, the time elapsed and the time
// left. stdout never gets any of it.
type progress struct {
	w     io.Writer
	live  bool // stderr is a terminal: redraw one line in place
	p     *probe.Progress
	start time.Time
	total time.Duration // how long the run should take, 0 if unknown
	now   func() time.Time
	// first and every are when the line first shows and how often after.
	first, every time.Duration

	stop chan struct{}
	done sync.WaitGroup
	drew bool // a live line is on screen and must be cleared
}

// startProgress starts the progress line of a run of cfg, counted by p,
// unless quiet; the returned function stops it and, on a terminal, clears
// the line. It never writes to stdout.
func startProgress(stderr io.Writer, quiet bool, cfg probe.Config, p *probe.Progress) (stop func()) {
	if quiet {
		return func() {}
	}
	pr := &progress{
		w: stderr, live: isTerminal(stderr), p: p, start: time.Now(),
		total: expectedLength(cfg), now: time.Now, first: plainEvery, every: plainEvery,
	}
	if pr.live {
		pr.first, pr.every = liveAfter, liveEvery
	}
	return pr.begin()
}

// begin starts printing and returns the function that stops it.
func (pr *progress) begin() (stop func()) {
	pr.stop = make(chan struct{})
	pr.done.Add(1)
	go pr.run()
	return func() {
		close(pr.stop)
		pr.done.Wait()
	}
}

func (pr *progress) run() {
	defer pr.done.Done()
	t := time.NewTimer(pr.first)
	defer t.Stop()
	for {
		select {
		case <-pr.stop:
			if pr.drew {
				fmt.Fprint(pr.w, "\r\x1b[K") // leave the terminal as it was
			}
			return
		case <-t.C:
			pr.print()
			t.Reset(pr.every)
		}
	}
}

// print writes one progress line: redrawn in place on a terminal, a line
// of its own elsewhere.
func (pr *progress) print() {
	line := pr.line(pr.now().Sub(pr.start))
	if pr.live {
		fmt.Fprint(pr.w, "\r\x1b[K"+line)
		pr.drew = true
		return
	}
	fmt.Fprintln(pr.w, line)
}

// line is the progress line after elapsed.
func (pr *progress) line(elapsed time.Duration) string {
	s := fmt.Sprintf("cnitrace: %d sent, %d answered, %d unanswered so far; %s elapsed",
		pr.p.Sent(), pr.p.Answered(), pr.p.Unanswered(), elapsed.Round(time.Second))
	if pr.total > 0 {
		s += fmt.Sprintf(", about %s left", max(pr.total-elapsed, 0).Round(time.Second))
	}
	return s
}

// expectedLength is how long a run of cfg takes: until the last send,
// then the last probe's timeout at most.
func expectedLength(cfg probe.Config) time.Duration {
	sending := cfg.Duration
	if cfg.Count > 0 {
		bycount := time.Duration(cfg.Count-1) * cfg.Interval
		if sending == 0 || bycount < sending {
			sending = bycount
		}
	}
	return sending + cfg.Timeout
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}
