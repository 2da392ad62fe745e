//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// rttFidelity puts cnitrace's RTT next to iputils ping's on the same path.
type rttFidelity struct {
	Rounds         int     `json:"rounds"`
	ProbesPerRound int     `json:"probes_per_round"`
	CnitraceP50    float64 `json:"cnitrace_p50_us"` // median over rounds of rtt_us p50
	CnitraceSpread float64 `json:"cnitrace_p90_p10_us"`
	PingStyleP50   float64 `json:"cnitrace_ping_style_p50_us"` // rtt_ping_us: user send to capture receive
	PingP50        float64 `json:"ping_p50_us"`
	PingSpread     float64 `json:"ping_p90_p10_us"`
	Ratio          float64 `json:"p50_ratio"`        // ping-style / ping: the same clocks as ping
	KernelRatio    float64 `json:"kernel_p50_ratio"` // rtt_us / ping: rtt_us leaves out the pod's send path
	Goal           string  `json:"goal"`
	Met            bool    `json:"met"`
}

func (b *bench) rttFidelity(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	f := &rttFidelity{Rounds: b.counts(6, 2), ProbesPerRound: b.counts(50, 20)}
	var ours, oursSpread, pingStyle, pings []float64
	for range f.Rounds { // alternately, in this process tree
		t, err := b.trace(ctx, l, "--count", strconv.Itoa(f.ProbesPerRound), "--interval", "10ms")
		if err != nil {
			return err
		}
		ours = append(ours, t.report.RTT.P50)
		oursSpread = append(oursSpread, t.report.RTT.P90-t.report.RTT.P10)
		pingStyle = append(pingStyle, t.report.PingRTT.P50)
		p, err := b.ping(ctx, l, f.ProbesPerRound, 10*time.Millisecond)
		if err != nil {
			return err
		}
		pings = append(pings, p...)
	}
	f.CnitraceP50, f.CnitraceSpread, f.PingStyleP50 = median(ours), median(oursSpread), median(pingStyle)
	f.PingP50 = median(pings)
	f.PingSpread = percentile(pings, 90) - percentile(pings, 10)
	f.Ratio, f.KernelRatio = f.PingStyleP50/f.PingP50, f.CnitraceP50/f.PingP50
	f.Goal = "ping-style p50 ratio 0.95-1.05; spread no wider than ping's"
	f.Met = f.Ratio >= 0.95 && f.Ratio <= 1.05 && f.CnitraceSpread <= f.PingSpread
	r.RTT = f
	return nil
}

// observerEffect is ping's RTT with cnitrace capturing on every point and
// without, in alternate rounds.
type observerEffect struct {
	Rounds     int     `json:"rounds"`
	AloneP50   float64 `json:"ping_alone_p50_us"`
	CaptureP50 float64 `json:"ping_while_capturing_p50_us"`
	AddedUS    float64 `json:"added_us"`
	Goal       string  `json:"goal"`
	Met        bool    `json:"met"`
}

func (b *bench) observerEffect(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	o := &observerEffect{Rounds: b.counts(6, 2)}
	n := b.counts(60, 20)
	var alone, captured []float64
	for range o.Rounds {
		p, err := b.ping(ctx, l, n, 10*time.Millisecond)
		if err != nil {
			return err
		}
		alone = append(alone, p...)
		p, err = b.pingWhileCapturing(ctx, l, n)
		if err != nil {
			return err
		}
		captured = append(captured, p...)
	}
	o.AloneP50, o.CaptureP50 = median(alone), median(captured)
	o.AddedUS = o.CaptureP50 - o.AloneP50
	o.Goal = "added <= 2 us"
	o.Met = o.AddedUS <= 2
	r.Observer = o
	return nil
}

// pingWhileCapturing pings while a cnitrace trace holds its captures open
// on every point and probes only sparsely (every 100 ms).
func (b *bench) pingWhileCapturing(ctx context.Context, l *lab.Lab, n int) ([]float64, error) {
	d := time.Duration(n)*10*time.Millisecond + time.Second
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.trace(tctx, l, "--count", strconv.Itoa(int(d/(100*time.Millisecond))), "--interval", "100ms")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // discovery and arming
	p, err := b.ping(ctx, l, n, 10*time.Millisecond)
	if terr := <-done; err == nil && terr != nil {
		err = fmt.Errorf("trace while pinging: %w", terr)
	}
	return p, err
}
