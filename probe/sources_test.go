package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoSources returns n sources of cfg on fresh echoConns, named "source
// <i>", with run ids 1 to n.
func echoSources(n int, cfg Config) ([]Source, []*echoConn) {
	sources, conns := make([]Source, n), make([]*echoConn, n)
	for i := range sources {
		conns[i] = newEchoConn()
		sources[i] = Source{Name: fmt.Sprintf("source %d", i), Conn: conns[i], Config: cfg}
		sources[i].Config.RunID = uint64(i + 1)
	}
	return sources, conns
}

// TestRunSourcesStartOffsets records the wait of every source: source i
// of n waits i*Interval/n, Interval being source 0's.
func TestRunSourcesStartOffsets(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		n        int
		interval time.Duration
		want     []time.Duration
	}{
		{1, 10 * ms, []time.Duration{0}},
		{2, 10 * ms, []time.Duration{0, 5 * ms}},
		{3, 30 * ms, []time.Duration{0, 10 * ms, 20 * ms}},
		{3, 0, []time.Duration{0, 0, 0}},
	} {
		t.Run(fmt.Sprintf("%d sources every %v", tc.n, tc.interval), func(t *testing.T) {
			cfg := testConfig(1)
			cfg.Interval = tc.interval
			sources, _ := echoSources(tc.n, cfg)
			sources[tc.n-1].Config.Interval = time.Hour // only source 0's counts
			var mu sync.Mutex
			var got []time.Duration
			wait := func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
				return ctx.Err()
			}
			results, err := runSources(context.Background(), sources, wait)
			if err != nil || len(results) != tc.n {
				t.Fatalf("got %d results, %v; want %d, no error", len(results), err, tc.n)
			}
			if slices.Sort(got); !slices.Equal(got, tc.want) {
				t.Errorf("sources waited %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRunSourcesInterleaves runs on real timers. Timers never fire early,
// so probe k of source i is sent no earlier than its offset plus k
// intervals after RunSources was called; how much later depends on the
// machine's load, so only the lower bound is checked, and the measured
// spacing is logged.
func TestRunSourcesInterleaves(t *testing.T) {
	const interval = 40 * time.Millisecond
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d sources", n), func(t *testing.T) {
			cfg := testConfig(3)
			cfg.Interval = interval
			sources, _ := echoSources(n, cfg)
			before := time.Now()
			results, err := RunSources(context.Background(), sources)
			if err != nil {
				t.Fatal(err)
			}
			for i, res := range results {
				if res.RunID != sources[i].Config.RunID || len(res.Probes) != cfg.Count {
					t.Fatalf("result %d: run id %#x, %d probes; want %#x, %d", i, res.RunID, len(res.Probes), sources[i].Config.RunID, cfg.Count)
				}
				offset := time.Duration(i) * interval / time.Duration(n)
				for k, p := range res.Probes {
					if earliest := before.Add(offset + time.Duration(k)*interval); p.SentAt.Before(earliest) || !p.Answered() {
						t.Errorf("source %d, probe %d: sent %v after the call (answered %v), want no earlier than %v and answered",
							i, k, p.SentAt.Sub(before), p.Answered(), earliest.Sub(before))
					}
				}
				t.Logf("source %d: first probe %v after source 0's (nominally %v)", i, res.Probes[0].SentAt.Sub(results[0].Probes[0].SentAt), offset)
			}
		})
	}
}

// TestRunSourcesFailureCancelsOthers: a source whose send fails ends every
// run at once, and its error, named, wins over the others' cancellation.
func TestRunSourcesFailureCancelsOthers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail       int
		unnamed    bool
		wantPrefix string
	}{
		{"first fails", 0, false, "probes from source 0: send echo request 2 "},
		{"second fails", 1, false, "probes from source 1: send echo request 2 "},
		{"unnamed fails", 1, true, "send echo request 2 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(1000)
			cfg.Interval = 5 * time.Millisecond
			sources, conns := echoSources(2, cfg)
			for _, c := range conns {
				c.drop = func(int) bool { return true }
			}
			conns[tc.fail].writeErr = func(seq int) error {
				if seq >= 2 {
					return syscall.EBADF
				}
				return nil
			}
			if tc.unnamed {
				sources[tc.fail].Name = ""
			}
			start := time.Now()
			results, err := RunSources(context.Background(), sources)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("RunSources took %v, want it to stop soon after the failure", took)
			}
			if !errors.Is(err, syscall.EBADF) || isCancellation(err) || !strings.HasPrefix(err.Error(), tc.wantPrefix) {
				t.Errorf("got error %q, want EBADF starting %q, not a cancellation", err, tc.wantPrefix)
			}
			if len(results) != 2 || results[0] == nil || results[1] == nil {
				t.Fatalf("got results %v, want two", results)
			}
			if n := len(results[tc.fail].Probes); n != 2 {
				t.Errorf("failing source: %d probes recorded, want the 2 sent before the failure", n)
			}
			if n := len(results[1-tc.fail].Probes); n >= cfg.Count {
				t.Errorf("other source: all %d probes sent, want it cancelled", n)
			}
		})
	}
}

// TestRunSourcesChecksFirst: a source that cannot be sent stops
// RunSources before any source sends.
func TestRunSourcesChecksFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func([]Source)
		want string
	}{
		{"no sources", nil, "no probe sources"},
		{"no run id", func(s []Source) { s[1].Config.RunID = 0 }, "probes from source 1: no run id"},
		{"same run id", func(s []Source) { s[1].Config.RunID = s[0].Config.RunID }, "probes from source 1: run id 0x1: source 0 has it too"},
		{"bad config", func(s []Source) { s[1].Config.Count = 0 }, "probes from source 1: count 0"},
		{"other family", func(s []Source) { s[1].Config.Target = netip.MustParseAddr("fd00::2") }, "probes from source 1: target fd00::2 needs an ICMPv6 socket"},
		{"no socket", func(s []Source) { s[1].Conn = nil }, "probes from source 1: no socket"},
		{"shared socket", func(s []Source) { s[1].Conn = s[0].Conn }, "probes from source 1: socket shared with source 0"},
		{"unnamed", func(s []Source) { s[1].Name, s[1].Config.Count = "", 0 }, "count 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sources, conns := echoSources(2, testConfig(3))
			if tc.mod == nil {
				sources = nil
			} else {
				tc.mod(sources)
			}
			results, err := RunSources(context.Background(), sources)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || results != nil {
				t.Errorf("got %v and %d results, want an error starting %q and none", err, len(results), tc.want)
			}
			for i, c := range conns {
				if c.sent != 0 {
					t.Errorf("source %d sent %d probes, want none", i, c.sent)
				}
			}
		})
	}
}

// TestRunSourcesCancelMidRun: cancelled, RunSources returns every source's
// partial Result with ctx's error.
func TestRunSourcesCancelMidRun(t *testing.T) {
	cfg := testConfig(1000)
	cfg.Interval = 20 * time.Millisecond
	sources, conns := echoSources(2, cfg)
	for _, c := range conns {
		c.drop = func(int) bool { return true }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	results, err := RunSources(ctx, sources)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got error %v, want context.DeadlineExceeded", err)
	}
	if len(results) != 2 || results[0] == nil || results[1] == nil {
		t.Fatalf("got results %v, want two", results)
	}
	for i, res := range results {
		if n := len(res.Probes); (i == 0 && n == 0) || n >= cfg.Count {
			t.Errorf("source %d: %d probes sent before the cancel, want some but not all", i, n)
		}
	}
}

// TestRunSourcesCancelBeforeStart: a source still waiting for its offset
// when ctx ends gets an empty Result naming its run; the cancellation
// decides the outcome over the source that finished.
func TestRunSourcesCancelBeforeStart(t *testing.T) {
	cfg := testConfig(1)
	cfg.Interval = 10 * time.Second // source 1 would start 5 s in
	sources, _ := echoSources(2, cfg)
	sources[1].Config.Target = netip.MustParseAddr("::ffff:10.244.2.3")
	sources[1].Config.Size = 100
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	results, err := RunSources(ctx, sources)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got error %v, want context.DeadlineExceeded", err)
	}
	if len(results) != 2 {
		t.Fatalf("got %d results, want 2", len(results))
	}
	if r := results[0]; len(r.Probes) != 1 || !r.Probes[0].Answered() {
		t.Errorf("source 0: %+v, want its one probe answered", r.Probes)
	}
	want := netip.MustParseAddr("10.244.2.3") // unmapped, as Run reports it
	if r := results[1]; r == nil || r.RunID != 2 || r.Target != want || r.Size != 100 || len(r.Probes) != 0 {
		t.Errorf("source 1: got %+v, want run id 2, target %v, size 100 and no probes", r, want)
	}
}
