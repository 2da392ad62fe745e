//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cnitrace/cnitrace/cmd/cnitrace-bench/nfqdelay"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// accuracyRow is one injected delay and what came back.
type accuracyRow struct {
	Site        string  `json:"site"`
	InjectedUS  float64 `json:"injected_us"`
	PingDeltaUS float64 `json:"ping_delta_us"` // ping's RTT p50 with minus without: the delay as ping saw it
	SegmentFrom string  `json:"segment_from"`
	SegmentTo   string  `json:"segment_to"`
	RecoveredUS float64 `json:"recovered_us"`      // the holding segment's p50 with minus without
	OtherMaxUS  float64 `json:"other_max_move_us"` // largest |p50 move| of any other separable segment
	Goal        string  `json:"goal"`
	Met         bool    `json:"met"`
}

// site is a place a delay can be injected and the segment that holds it.
// prepare, when set, readies the lab for the site's baselines (and returns
// how to undo it).
type site struct {
	name    string
	holds   func(s segment, kind map[string]string) bool
	inject  func(ctx context.Context, l *lab.Lab, d time.Duration) (stop func() error, err error)
	prepare func(ctx context.Context, l *lab.Lab) (undo func() error, err error)
}

func sites() []site {
	return []site{
		{"network", isNetwork, injectNetwork, prepareNetwork},
		{"forward-request", func(s segment, k map[string]string) bool {
			return s.Direction == "request" && k[s.To] == "vxlan"
		}, forwardInjector(lab.BridgeName, lab.VXLANName), nil},
		{"forward-reply", func(s segment, k map[string]string) bool {
			return s.Direction == "reply" && k[s.To] == "bridge"
		}, forwardInjector(lab.VXLANName, lab.BridgeName), nil},
	}
}

func isNetwork(s segment, _ map[string]string) bool { return s.Class == "network" }

// forwardInjector holds ICMP forwarded from in to out on node 1 with an
// NFQUEUE delayer.
func forwardInjector(in, out string) func(context.Context, *lab.Lab, time.Duration) (func() error, error) {
	return func(ctx context.Context, l *lab.Lab, d time.Duration) (func() error, error) {
		const queue = 7
		del, err := nfqdelay.Open(l.Nodes[0].NS, nfqdelay.Config{Queue: queue, Delay: d})
		if err != nil {
			return nil, err
		}
		rule := []string{"FORWARD", "-i", in, "-o", out, "-p", "icmp", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(queue), "--queue-bypass"}
		if out, err := l.Command(ctx, l.Nodes[0].NSPath, "iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
			del.Close()
			return nil, fmt.Errorf("iptables: %v: %s", err, out)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- del.Run(rctx) }()
		return func() error {
			_, derr := l.Command(ctx, l.Nodes[0].NSPath, "iptables", append([]string{"-D"}, rule...)...).CombinedOutput()
			cancel()
			return errors.Join(derr, <-done, del.Close())
		}, nil
	}
}

func (b *bench) accuracy(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, st := range sites() {
		rows, err := b.accuracySite(ctx, l, st)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		r.Accuracy = append(r.Accuracy, rows...)
	}
	return nil
}

// accuracySite measures one site at every magnitude.
func (b *bench) accuracySite(ctx context.Context, l *lab.Lab, st site) (rows []accuracyRow, err error) {
	if st.prepare != nil {
		undo, err := st.prepare(ctx, l)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, undo()) }()
	}
	for _, d := range []time.Duration{200 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		row, err := b.accuracyRow(ctx, l, st, d)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", d, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// accuracyRow measures one site and delay: ping and cnitrace without the
// delay, then with it.
func (b *bench) accuracyRow(ctx context.Context, l *lab.Lab, st site, d time.Duration) (accuracyRow, error) {
	n := b.counts(50, 15)
	flags := []string{"--count", strconv.Itoa(n), "--interval", "10ms"}
	pingBase, err := b.ping(ctx, l, n, 10*time.Millisecond)
	if err != nil {
		return accuracyRow{}, err
	}
	base, err := b.trace(ctx, l, flags...)
	if err != nil {
		return accuracyRow{}, err
	}
	stop, err := st.inject(ctx, l, d)
	if err != nil {
		return accuracyRow{}, err
	}
	pingWith, perr := b.ping(ctx, l, n, 10*time.Millisecond)
	with, terr := b.trace(ctx, l, flags...)
	if err := errors.Join(stop(), perr, terr); err != nil {
		return accuracyRow{}, err
	}
	row := compareSegments(st, base.report, with.report)
	row.InjectedUS = float64(d.Microseconds())
	row.PingDeltaUS = median(pingWith) - median(pingBase)
	// The injector adds its own time (the NFQUEUE round trip, the delay
	// line's wake-ups), so the truth is the delay an independent observer
	// saw: ping's RTT growth.
	tol := math.Max(0.03*row.PingDeltaUS, 20)
	row.Goal = fmt.Sprintf("within %.0f us of ping's; others < 10 us", tol)
	row.Met = math.Abs(row.RecoveredUS-row.PingDeltaUS) <= tol && row.OtherMaxUS < 10
	return row, nil
}

// compareSegments finds the segment holding the site and the largest move
// of the others between two reports of the same path.
func compareSegments(st site, base, with report) accuracyRow {
	kind := map[string]string{}
	for _, p := range with.Points {
		kind[p.ID] = p.Kind
	}
	row := accuracyRow{Site: st.name}
	for i, s := range with.Segments {
		if i >= len(base.Segments) || s.US == nil || base.Segments[i].US == nil {
			continue
		}
		move := s.US.P50 - base.Segments[i].US.P50
		if st.holds(s, kind) {
			row.SegmentFrom, row.SegmentTo, row.RecoveredUS = s.From, s.To, move
			continue
		}
		row.OtherMaxUS = math.Max(row.OtherMaxUS, math.Abs(move))
	}
	return row
}
