//go:build linux

package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// speedResult is section 5: how soon a short trace answers, how fast the
// prober sends, and a sustained run's rate and memory.
type speedResult struct {
	Answer *answerResult `json:"time_to_answer"`
	Rate   *rateResult   `json:"prober_rate"`
	Scale  *scaleResult  `json:"sustained"`
}

// answerResult is `trace --count 10 --interval 10ms` against
// `ping -c 10 -i 0.01`, wall clock, in alternating rounds. Both start
// through a fork and exec; ping through nsenter as well, cnitrace enters
// the netns itself.
type answerResult struct {
	Rounds   int       `json:"rounds"`
	TraceMS  []float64 `json:"trace_wall_ms"`
	PingMS   []float64 `json:"ping_wall_ms"`
	PerRound []float64 `json:"ratio_per_round"`
	Ratio    interval  `json:"ratio"`
	Goal     string    `json:"goal"`
	Verdict  verdict   `json:"verdict"`
}

// rateResult is the prober's sustained rate at 0.5 ms, measured as the
// difference of two runs (a short and a long one), so that start-up,
// discovery, arming and the final drain, the same in both, cancel out.
type rateResult struct {
	Short, Long int       `json:"-"`
	Runs        []rateRun `json:"runs"`
	PerSecond   float64   `json:"probes_per_second"` // the lower of the rounds
	Goal        string    `json:"goal"`
	Verdict     verdict   `json:"verdict"`
}

type rateRun struct {
	Probes    int     `json:"probes"`
	WallS     float64 `json:"wall_s"`
	Sent      int     `json:"sent"`
	Received  int     `json:"received"`
	Dropped   int     `json:"dropped_by_cnitrace"`
	Late      int     `json:"late"`
	RingDrops uint64  `json:"ring_drops"`
	// Steal is the share of the machine's CPU time (wall x CPUs) that the
	// hypervisor gave to others during the run (/proc/stat's steal).
	Steal float64 `json:"machine_steal_share"`
}

// rateGoal is the probes a second asked for at 0.5 ms; the differential
// measurement is allowed 1% for the jitter of two processes' start and end.
//
// maxRateSteal is the most steal under which a rate short of the goal is
// the prober's: on a VM whose host runs something else for milliseconds
// at a time no sender keeps a 0.5 ms grid, and a run that lost more of
// the machine's time than this to the host is not judged. Measured on the
// AMD VM of 2026-12-03: 8-20% steal during 20,000 probes at 0.5 ms (0.1%
// idle, 3% for one spinning thread), 10.09-10.24 s for the 10 s run, the
// longer with the more steal, and the prober's wait for its timerfd
// (epoll_pwait) returning 1.4-5 ms late while perf sched saw no task
// ahead of it (docs/benchmarks.md, "Section 5 again").
const (
	rateGoal     = 2000
	rateSlack    = 0.99
	maxRateSteal = 0.02
)

func (b *bench) speed(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	s := &speedResult{}
	if s.Answer, err = b.timeToAnswer(ctx, l); err != nil {
		return err
	}
	if s.Rate, err = b.proberRate(ctx, l); err != nil {
		return err
	}
	if s.Scale, err = b.scale(ctx, l); err != nil {
		return err
	}
	r.Speed = s
	return nil
}

func (b *bench) timeToAnswer(ctx context.Context, l *lab.Lab) (*answerResult, error) {
	a := &answerResult{Rounds: b.counts(10, 2), Goal: "trace wall <= 1.5 x ping's (95% CI)"}
	for range a.Rounds {
		t, err := b.trace(ctx, l, "--count", "10", "--interval", "10ms")
		if err != nil {
			return nil, err
		}
		p, err := b.pingWith(ctx, l, 10, 10*time.Millisecond)
		if err != nil {
			return nil, err
		}
		tm, pm := float64(t.wall.Microseconds())/1000, float64(p.wall.Microseconds())/1000
		a.TraceMS, a.PingMS, a.PerRound = append(a.TraceMS, tm), append(a.PingMS, pm), append(a.PerRound, tm/pm)
	}
	a.Ratio = meanCI(a.PerRound)
	a.Verdict = judge(a.Ratio, atMost(1.5))
	return a, nil
}

func (b *bench) proberRate(ctx context.Context, l *lab.Lab) (*rateResult, error) {
	rt := &rateResult{Short: b.counts(2000, 1000), Long: b.counts(20000, 6000),
		Goal: fmt.Sprintf("%d probes/s at --interval 0.5ms (>= %.0f, differential), nothing dropped by cnitrace or its rings", rateGoal, rateGoal*rateSlack)}
	for range b.counts(2, 1) {
		for _, n := range []int{rt.Short, rt.Long} {
			m0 := machineStat()
			t, err := b.trace(ctx, l, "--count", strconv.Itoa(n), "--interval", "500us")
			if err != nil {
				return nil, err
			}
			steal := machineStat().sub(m0).Steal / (t.wall.Seconds() * float64(runtime.NumCPU()))
			rt.Runs = append(rt.Runs, rateRun{Probes: n, WallS: t.wall.Seconds(), Sent: t.report.Probes.Sent, Received: t.report.Probes.Received,
				Dropped: t.report.Probes.Dropped, Late: t.report.Probes.Late, RingDrops: t.report.ringDrops(), Steal: steal})
		}
	}
	rt.judge()
	return rt, nil
}

// judge takes the rate of each pair of runs (short, then long) from their
// difference, keeps the lower, and judges it: a drop of ours is never
// met, a rate short of the goal is not judged if the host stole more than
// maxRateSteal of the machine during the pair's long run.
func (rt *rateResult) judge() {
	var vs []verdict
	stolen := 0.0
	for i := 0; i+1 < len(rt.Runs); i += 2 {
		short, long := rt.Runs[i], rt.Runs[i+1]
		rate := float64(long.Sent-short.Sent) / (long.WallS - short.WallS)
		if i == 0 || rate < rt.PerSecond {
			rt.PerSecond, stolen = rate, long.Steal
		}
	}
	for _, r := range rt.Runs {
		vs = append(vs, metIf(r.Dropped == 0 && r.RingDrops == 0))
	}
	rateMet := metIf(rt.PerSecond >= rateGoal*rateSlack)
	if !rateMet.Met() && stolen > maxRateSteal {
		rateMet = notJudged("the host took %.0f%% of the machine's CPU during the run (steal), over %.0f%%", 100*stolen, 100*maxRateSteal)
	}
	rt.Verdict = allOf(append(vs, rateMet)...)
}
