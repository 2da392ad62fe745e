//go:build linux

package main

import (
	"context"
	"fmt"
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
}

// rateGoal is the probes a second asked for at 0.5 ms; the differential
// measurement is allowed 1% for the jitter of two processes' start and end.
const (
	rateGoal  = 2000
	rateSlack = 0.99
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
	var vs []verdict
	for i := range b.counts(2, 1) {
		var pair [2]rateRun
		for j, n := range []int{rt.Short, rt.Long} {
			t, err := b.trace(ctx, l, "--count", strconv.Itoa(n), "--interval", "500us")
			if err != nil {
				return nil, err
			}
			pair[j] = rateRun{Probes: n, WallS: t.wall.Seconds(), Sent: t.report.Probes.Sent, Received: t.report.Probes.Received,
				Dropped: t.report.Probes.Dropped, Late: t.report.Probes.Late, RingDrops: t.report.ringDrops()}
			vs = append(vs, metIf(pair[j].Dropped == 0 && pair[j].RingDrops == 0))
		}
		rt.Runs = append(rt.Runs, pair[:]...)
		rate := float64(pair[1].Sent-pair[0].Sent) / (pair[1].WallS - pair[0].WallS)
		if i == 0 || rate < rt.PerSecond {
			rt.PerSecond = rate
		}
	}
	rt.Verdict = allOf(append(vs, metIf(rt.PerSecond >= rateGoal*rateSlack))...)
	return rt, nil
}
