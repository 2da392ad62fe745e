package probe

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Source is one socket's share of a run: its own probes with their own run
// id, so that its tokens never mix with another source's.
type Source struct {
	Name   string // how errors name the source, e.g. "the node netns net:[4026531840]"; "" adds no context
	Conn   Conn   // one source's alone: two runs on one socket read each other's replies
	Config Config // RunID must be non-zero and distinct from every other source's
}

// RunSources sends every source's probes at once, each with Run on its own
// goroutine, source i starting i*Interval/len(sources) after source 0
// (Interval is source 0's: with two sources of one interval, the second's
// probes fall half-way between the first's).
//
// It checks every source first (each Config valid, with a non-zero run id
// of its own, and a Conn of its own of the target's family) and sends
// nothing, returning no results, if one fails. Otherwise it returns one
// *Result per source, in order, never nil: a source cancelled before it
// started has an empty Result with its RunID, Target and Size set.
//
// The first source to fail (other than by cancellation) cancels the
// others. The error returned decides the outcome: that failure before a
// cancellation, a cancellation before nil; a second source failing on its
// own before it saw the cancellation is not reported. A source's failure, and its
// check's, is wrapped as "probes from <Name>: ..." when Name is set;
// cancellations are ctx's error as it is.
func RunSources(ctx context.Context, sources []Source) ([]*Result, error) {
	return runSources(ctx, sources, sleep)
}

// waitFunc waits d, or until ctx is done, and returns ctx's error in that
// case, nil otherwise. RunSources waits with sleep; its tests pass one that
// records d.
type waitFunc func(ctx context.Context, d time.Duration) error

// sourceDone is what a source's goroutine reports once its run is over.
type sourceDone struct {
	i   int
	res *Result
	err error
}

// runSources is RunSources, waiting for each source's start with wait.
func runSources(ctx context.Context, sources []Source, wait waitFunc) ([]*Result, error) {
	if err := checkSources(sources); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan sourceDone, len(sources))
	for i, s := range sources {
		offset := startOffset(i, len(sources), sources[0].Config.Interval)
		go func() {
			res, err := s.run(sctx, offset, wait)
			done <- sourceDone{i: i, res: res, err: err}
		}()
	}
	results := make([]*Result, len(sources))
	var failure, cancelled error
	for range sources {
		d := <-done // in the order the runs end
		results[d.i] = d.res
		switch {
		case d.err == nil:
		case isCancellation(d.err):
			if cancelled == nil {
				cancelled = d.err
			}
		case failure == nil:
			failure = sources[d.i].wrap(d.err)
			cancel()
		}
	}
	if failure != nil {
		return results, failure
	}
	return results, cancelled
}

// startOffset is how long after source 0 source i of n starts: the i-th
// n-th of interval.
func startOffset(i, n int, interval time.Duration) time.Duration {
	return time.Duration(i) * interval / time.Duration(n)
}

// run waits offset, then runs s's probes. Cancelled before it starts, it
// returns s's empty Result and ctx's error.
func (s Source) run(ctx context.Context, offset time.Duration, wait waitFunc) (*Result, error) {
	if err := wait(ctx, offset); err != nil {
		return newResult(s.Config), err
	}
	res, err := Run(ctx, s.Conn, s.Config)
	if res == nil { // Run returns none only when a check fails, and checkSources made them all
		res = newResult(s.Config)
	}
	return res, err
}

// checkSources reports the first source RunSources cannot send.
func checkSources(sources []Source) error {
	if len(sources) == 0 {
		return errors.New("no probe sources")
	}
	for i, s := range sources {
		if err := s.check(sources[:i]); err != nil {
			return s.wrap(err)
		}
	}
	return nil
}

// check reports why s cannot be sent alongside the sources before it.
func (s Source) check(before []Source) error {
	if s.Config.RunID == 0 {
		return errors.New("no run id: every source needs its own (NewRunID)")
	}
	if _, _, err := prepareCodec(s.Conn, s.Config); err != nil {
		return err
	}
	for j, o := range before {
		switch {
		case o.Config.RunID == s.Config.RunID:
			return fmt.Errorf("run id %#x: source %d has it too, every source needs its own", s.Config.RunID, j)
		case o.Conn == s.Conn: // Conns are pointers or comparable structs: this package makes them all
			return fmt.Errorf("socket shared with source %d: every source needs its own", j)
		}
	}
	return nil
}

// wrap names s in err, when s has a name.
func (s Source) wrap(err error) error {
	if s.Name == "" {
		return err
	}
	return fmt.Errorf("probes from %s: %w", s.Name, err)
}

// isCancellation reports whether err is a run's ctx being done rather than
// a failure of its own.
func isCancellation(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// sleep is the waitFunc of RunSources: a timer.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
