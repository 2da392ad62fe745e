//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// bench holds what every section needs.
type bench struct {
	cfg config
	log io.Writer
}

// report is the part of cnitrace's JSON report (docs/report-format.md) the
// benchmark reads.
type report struct {
	Probes struct {
		Sent, Received, Late, Dropped int
	}
	ExactProbes int  `json:"exact_probes"`
	RTT         dist `json:"rtt_us"`
	PingRTT     dist `json:"rtt_ping_us"`
	PathRTT     dist `json:"rtt_path_us"`
	UserRTT     dist `json:"rtt_user_us"`
	Points      []struct {
		ID, Kind string
		Capture  struct{ Packets, Drops, Freezes uint64 }
	}
	Segments []segment
	Stamps   *stamps `json:"stamps"` // trace --for-merge: every probe's capture stamps
}

// stamps is what the bench reads of a report's stamps record: the steps
// a probe takes and each probe's kernel stamp at each (Unix ns, 0: not
// seen there).
type stamps struct {
	Steps []struct {
		Point string
		Reply bool
	}
	Runs []runStamps
}

// runStamps are one run's probes in a stamps record.
type runStamps struct {
	RunID  string `json:"run_id"` // 16 hex digits
	Probes []probeStamps
}

// probeStamps is one probe's stamp at each step.
type probeStamps struct {
	Seq uint32
	At  []int64
}

type segment struct {
	From, To, Direction, Class string
	Separable                  bool
	Seen, Lost                 int
	US                         *dist `json:"us"`
}

type dist struct{ P10, P50, P90, P99, Max float64 }

// traceRun is one finished cnitrace process: its report and what it cost.
type traceRun struct {
	report report
	wall   time.Duration
	cpu    time.Duration // user + system
	sys    time.Duration // system alone
	maxRSS float64       // ru_maxrss, MB
}

// capturedEverywhere is the fewest packets any of the report's capture
// points saw, and that point.
func (r report) capturedEverywhere() (fewest uint64, at string) {
	for i, p := range r.Points {
		if i == 0 || p.Capture.Packets < fewest {
			fewest, at = p.Capture.Packets, p.ID
		}
	}
	return fewest, at
}

// sendSpan returns the capture stamps of the first and the last probe at
// the first step of the path (the request leaving the pod), from the
// report's stamps (trace --for-merge); false when there are none.
func (r report) sendSpan() (first, last time.Time, ok bool) {
	if r.Stamps == nil {
		return time.Time{}, time.Time{}, false
	}
	var lo, hi int64
	for _, run := range r.Stamps.Runs {
		for _, p := range run.Probes {
			if len(p.At) == 0 || p.At[0] == 0 {
				continue
			}
			if lo == 0 || p.At[0] < lo {
				lo = p.At[0]
			}
			hi = max(hi, p.At[0])
		}
	}
	return time.Unix(0, lo), time.Unix(0, hi), lo != 0
}

// ringDrops sums PACKET_STATISTICS drops over every point.
func (r report) ringDrops() uint64 {
	var n uint64
	for _, p := range r.Points {
		n += p.Capture.Drops
	}
	return n
}

// newLab builds a lab for one section; the caller closes it.
func (b *bench) newLab(ctx context.Context) (*lab.Lab, error) {
	return lab.Up(ctx, lab.Config{})
}

// traceArgs are the flags that trace from pod 1 to pod 2 of l, as JSON.
func traceArgs(l *lab.Lab) []string {
	return append([]string{"trace", "--format", "json"}, l.TraceArgs()...)
}

// trace runs the cnitrace binary across l with extra flags.
func (b *bench) trace(ctx context.Context, l *lab.Lab, extra ...string) (traceRun, error) {
	cmd := exec.CommandContext(ctx, b.cfg.bin, append(traceArgs(l), extra...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := traceRun{wall: time.Since(start), cpu: cpuTime(cmd), sys: sysTime(cmd), maxRSS: maxRSSMB(cmd)}
	if err != nil && cmd.ProcessState.ExitCode() != 3 { // 3: probes lost, the report is still there
		return r, fmt.Errorf("cnitrace trace: %v: %s", err, stderr.String())
	}
	return r, jsonInto(stdout.Bytes(), &r.report)
}

func jsonInto(b []byte, rep *report) error {
	if err := json.Unmarshal(b, rep); err != nil {
		return fmt.Errorf("cnitrace trace: not a JSON report: %w", err)
	}
	return nil
}

func cpuTime(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func sysTime(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.SystemTime()
}

// maxRSSMB is the exited child's peak resident set (ru_maxrss from
// wait4), which no sampling can miss.
func maxRSSMB(cmd *exec.Cmd) float64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024 // kB on Linux
	}
	return 0
}

// pingTime reads a reply's line of ping's output: its time stamp (-D,
// Unix seconds, when the line was printed) if there is one, and its RTT.
var pingTime = regexp.MustCompile(`(?m)^(?:\[([0-9]+\.[0-9]+)\] )?.*time=([0-9.]+) ms`)

// pingRun is one finished iputils ping.
type pingRun struct {
	rtts []float64   // us, one per reply
	sent []time.Time // with -D: when each reply's echo was sent (its stamp minus its RTT)
	wall time.Duration
	cpu  time.Duration
	sys  time.Duration
}

// readReplies appends the replies in ping's output to p.
func (p *pingRun) readReplies(out []byte) {
	for _, m := range pingTime.FindAllSubmatch(out, -1) {
		ms, _ := strconv.ParseFloat(string(m[2]), 64)
		p.rtts = append(p.rtts, ms*1000)
		if at, ok := unixStamp(string(m[1])); ok {
			p.sent = append(p.sent, at.Add(-time.Duration(math.Round(ms*1e6))))
		}
	}
}

// unixStamp reads ping's -D stamp, Unix seconds with a fraction, to the
// nanosecond (a float64 would round it to 256 ns).
func unixStamp(s string) (time.Time, bool) {
	secs, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) > 9 {
		return time.Time{}, false
	}
	sec, err1 := strconv.ParseInt(secs, 10, 64)
	nsec, err2 := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec), true
}

// ping runs iputils ping from pod 1 to pod 2 and returns its RTTs in us.
func (b *bench) ping(ctx context.Context, l *lab.Lab, count int, interval time.Duration) ([]float64, error) {
	p, err := b.pingWith(ctx, l, count, interval)
	return p.rtts, err
}

// pingWith runs ping with extra flags before the address (-p PATTERN).
func (b *bench) pingWith(ctx context.Context, l *lab.Lab, count int, interval time.Duration, extra ...string) (pingRun, error) {
	args := append([]string{"-n", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "1"}, extra...)
	cmd := l.Command(ctx, l.Nodes[0].Pod.NSPath, "ping", append(args, l.Nodes[1].Pod.Addr.String())...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	p := pingRun{wall: time.Since(start), cpu: cpuTime(cmd), sys: sysTime(cmd)}
	p.readReplies(out)
	if len(p.rtts) == 0 {
		return p, fmt.Errorf("ping: no replies (%v): %s", err, out)
	}
	return p, nil
}

// percentile returns the nearest-rank percentile p (0-100) of v.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func median(v []float64) float64 { return percentile(v, 50) }

// counts picks the run lengths: quick mode is a smoke test.
func (b *bench) counts(full, quick int) int {
	if b.cfg.quick {
		return quick
	}
	return full
}

// traceWithPing runs a trace and an iputils ping of n probes each at
// interval across l at the same time: the trace starts first and sends
// armLead's worth of extra probes, so that its probes cover ping's whole
// run once its captures are armed.
func (b *bench) traceWithPing(ctx context.Context, l *lab.Lab, n int, interval time.Duration, flags ...string) (traceRun, pingRun, error) {
	const armLead = 300 * time.Millisecond
	extra := int(2 * armLead / interval)
	done := make(chan struct{})
	var t traceRun
	var terr error
	go func() {
		defer close(done)
		t, terr = b.trace(ctx, l, append([]string{"--count", strconv.Itoa(n + extra), "--interval", interval.String()}, flags...)...)
	}()
	select {
	case <-time.After(armLead):
	case <-done:
	}
	p, perr := b.pingWith(ctx, l, n, interval)
	<-done
	return t, p, errors.Join(terr, perr)
}
