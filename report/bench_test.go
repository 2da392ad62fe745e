package report

import (
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// BenchmarkAccumulator is the report's cost per observation (Add), per run
// of 1000 probes on a five-point path (Result), per probe folded into
// sketches beyond ExactProbes (fold), and per probe of a long run beyond
// ExactProbes, its record and its ten observations added and, a second of
// run time later, folded (long-run-probe).
func BenchmarkAccumulator(b *testing.B) {
	probes, obs := run{n: 1000, delays: designDelays(), jitter: func(seq, seg int) time.Duration {
		return time.Duration(seq%7) * time.Microsecond
	}}.build()
	b.Run("add", func(b *testing.B) {
		acc, _ := NewAccumulator(flannelPath(), []ProbeSource{{RunID: probes.RunID}})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			acc.Add(obs[i%len(obs)])
			i++
		}
	})
	b.Run("result-1000-probes", func(b *testing.B) {
		acc, _ := NewAccumulator(flannelPath(), []ProbeSource{{RunID: probes.RunID}})
		for _, o := range obs {
			acc.Add(o)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := acc.Result(Recorded{Probes: []*probe.Result{probes}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fold", func(b *testing.B) {
		acc, _ := NewAccumulator(flannelPath(), []ProbeSource{{RunID: probes.RunID}})
		for _, o := range obs {
			acc.Add(o)
		}
		var exact []*timeline
		for i := range probes.Probes {
			exact = append(exact, acc.line(&acc.arrived[0], &probes.Probes[i]))
		}
		t := newTally(len(acc.steps), planSpans(acc.steps, exact), true, 0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			t.fold(exact[i%len(exact)], acc.steps)
			i++
		}
	})
	b.Run("long-run-probe", func(b *testing.B) {
		f := newLongRunFeed()
		b.ReportAllocs()
		for b.Loop() {
			f.next()
		}
		f.check(b)
	})
}
