//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// kernelRef times node 1's path from the kernel's own network
// tracepoints, as a reference for section 1's other segments: perf
// records net:net_dev_start_xmit (each TX) and net:netif_receive_skb
// (each RX, after the backlog) on every CPU, on perf's clock, so it
// shares neither cnitrace's sockets nor its stamps. A delay of 1-5 ms
// makes the kernel itself take longer on some hops after the hold (the
// packet's way on after the injector runs from colder caches: measured
// here, the network segment +9 [0.3, 17.6] us by these tracepoints with
// the request held 5 ms in FORWARD, +10 [3.0, 16.9] by cnitrace), so the
// bench judges cnitrace's move of each segment against this reference's
// move in the same round instead of against zero.
type kernelRef struct {
	cmd  *exec.Cmd
	dir  string
	file string
}

// refDevs names the devices of node 1's path by point kind, as the
// tracepoints name them (no netns: the host veth's name is unique, and
// the others are told apart by their order around it).
type refDevs map[string]string

// labDevs is node 1's path in l by point kind.
func labDevs(l *lab.Lab) refDevs {
	return refDevs{"pod": lab.PodIfName, "veth": l.Nodes[0].Pod.HostVeth, "bridge": lab.BridgeName, "vxlan": lab.VXLANName, "uplink": lab.UplinkName}
}

// startKernelRef starts perf recording the tracepoints; stop ends it.
func startKernelRef(ctx context.Context) (*kernelRef, error) {
	dir, err := os.MkdirTemp("", "cnitrace-bench-ref")
	if err != nil {
		return nil, err
	}
	k := &kernelRef{dir: dir, file: filepath.Join(dir, "perf.data")}
	k.cmd = exec.CommandContext(ctx, "perf", "record", "-q", "-k", "mono", "-a",
		"-e", "net:net_dev_start_xmit", "-e", "net:netif_receive_skb", "-o", k.file)
	if err := k.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start perf record: %w", err)
	}
	time.Sleep(200 * time.Millisecond) // armed before the trace's first probes matter
	return k, nil
}

// stop ends the recording and returns each segment's median span (us) by
// its key ("request p2->p3"), over every probe-like packet (the trace's
// and ping's) that crossed it, with the report's point IDs and kinds.
func (k *kernelRef) stop(ctx context.Context, devs refDevs, points map[string]string) (map[string]float64, error) {
	defer os.RemoveAll(k.dir)
	serr := k.cmd.Process.Signal(syscall.SIGINT)
	werr := k.cmd.Wait()
	if serr != nil || werr != nil && !isSignalExit(werr) {
		return nil, fmt.Errorf("perf record: %w", errors.Join(serr, werr))
	}
	out, err := exec.CommandContext(ctx, "perf", "script", "-i", k.file, "-F", "time,event,trace", "--ns").Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	req, rep := refSpans(parseRefEvents(bytes.NewReader(out)), devs)
	return refMedians(req, rep, points), nil
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && (ee.ExitCode() == 130 || ee.ExitCode() == -1)
}

// refEvent is one tracepoint hit: when (ns, perf's clock), TX or RX, on
// which device, of which skb.
type refEvent struct {
	at  int64
	tx  bool
	dev string
	skb string
}

// parseRefEvents reads perf script's lines, e.g.
//
//	36748.373978444: net:net_dev_start_xmit: dev=eth0 queue_mapping=0 skbaddr=0xffff8881a3580200 ...
func parseRefEvents(r io.Reader) []refEvent {
	var evs []refEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		sec, ns, ok := strings.Cut(strings.TrimSuffix(f[0], ":"), ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		n, err2 := strconv.ParseInt(ns, 10, 64)
		if !ok || err1 != nil || err2 != nil || len(ns) != 9 {
			continue
		}
		e := refEvent{at: s*1e9 + n}
		switch f[1] {
		case "net:net_dev_start_xmit:":
			e.tx = true
		case "net:netif_receive_skb:":
		default:
			continue
		}
		for _, kv := range f[2:] {
			if v, ok := strings.CutPrefix(kv, "dev="); ok {
				e.dev = v
			} else if v, ok := strings.CutPrefix(kv, "skbaddr="); ok {
				e.skb = v
			}
		}
		if e.dev != "" && e.skb != "" {
			evs = append(evs, e)
		}
	}
	return evs
}

// refCrossing is one packet's time at each point of node 1 it crossed, by
// point kind.
type refCrossing map[string]int64

// refSpans finds node 1's requests (an skb received on the host veth) and
// replies (one sent on it) and their times at each point: the request at
// the pod's TX just before, then the bridge's RX, the overlay's TX and the
// uplink's TX after; the reply at the pod's RX just after, then the
// bridge's TX, the overlay's RX and the uplink's RX before, each the
// nearest on the same skb. The reply paired with a request is the first
// whose uplink RX follows the request's uplink TX before the next request
// leaves.
func refSpans(evs []refEvent, devs refDevs) (req, rep []refCrossing) {
	bySKB := map[string][]refEvent{}
	for _, e := range evs {
		bySKB[e.skb] = append(bySKB[e.skb], e)
	}
	const window = int64(time.Second)
	for _, es := range bySKB {
		slices.SortFunc(es, func(a, b refEvent) int { return int(a.at - b.at) })
		find := func(i, step int, tx bool, dev string) int {
			for j := i + step; j >= 0 && j < len(es) && abs64(es[j].at-es[i].at) < window; j += step {
				if es[j].tx == tx && es[j].dev == dev {
					return j
				}
			}
			return -1
		}
		for i, e := range es {
			if e.dev != devs["veth"] {
				continue
			}
			c := refCrossing{"veth": e.at}
			if !e.tx {
				chain(es, c, find(i, -1, true, devs["pod"]), "pod")
				b := chain(es, c, find(i, 1, false, devs["bridge"]), "bridge")
				if v := chain(es, c, find(b, 1, true, devs["vxlan"]), "vxlan"); v >= 0 {
					chain(es, c, find(v, 1, true, devs["uplink"]), "uplink")
				}
				req = append(req, c)
				continue
			}
			chain(es, c, find(i, 1, false, devs["pod"]), "pod")
			b := chain(es, c, find(i, -1, true, devs["bridge"]), "bridge")
			if v := chain(es, c, find(b, -1, false, devs["vxlan"]), "vxlan"); v >= 0 {
				chain(es, c, find(v, -1, false, devs["uplink"]), "uplink")
			}
			rep = append(rep, c)
		}
	}
	pairNetwork(req, rep)
	return req, rep
}

// chain records es[j] as the crossing's time at kind and returns j (-1:
// none, and nothing further along can be found from it).
func chain(es []refEvent, c refCrossing, j int, kind string) int {
	if j < 0 {
		return -1
	}
	c[kind] = es[j].at
	return j
}

// pairNetwork puts on each request the time of its reply at the uplink
// ("reply-uplink").
func pairNetwork(req, rep []refCrossing) {
	var out, back []refCrossing
	for _, c := range req {
		if _, ok := c["uplink"]; ok {
			out = append(out, c)
		}
	}
	for _, c := range rep {
		if _, ok := c["uplink"]; ok {
			back = append(back, c)
		}
	}
	slices.SortFunc(out, func(a, b refCrossing) int { return int(a["uplink"] - b["uplink"]) })
	slices.SortFunc(back, func(a, b refCrossing) int { return int(a["uplink"] - b["uplink"]) })
	j := 0
	for i, c := range out {
		for j < len(back) && back[j]["uplink"] <= c["uplink"] {
			j++
		}
		if j < len(back) && (i+1 == len(out) || back[j]["uplink"] < out[i+1]["uplink"]) {
			c["reply-uplink"] = back[j]["uplink"]
		}
	}
}

// refMedians is each segment's median span (us) over the crossings that
// have both its ends; points maps the report's point IDs to their kinds
// in path order (p0 pod ... p4 uplink).
func refMedians(req, rep []refCrossing, points map[string]string) map[string]float64 {
	ids := make([]string, 0, len(points))
	for id := range points {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := map[string]float64{}
	med := func(key string, cs []refCrossing, from, to string) {
		var v []float64
		for _, c := range cs {
			a, aok := c[from]
			b, bok := c[to]
			if aok && bok {
				v = append(v, float64(b-a)/1000)
			}
		}
		if len(v) >= minPaired {
			out[key] = median(v)
		}
	}
	for i := 0; i+1 < len(ids); i++ {
		from, to := ids[i], ids[i+1]
		med("request "+from+"->"+to, req, points[from], points[to])
		med("reply "+to+"->"+from, rep, points[to], points[from])
	}
	if n := len(ids); n > 0 {
		last := ids[n-1]
		med("request "+last+"->"+last, req, points[last], "reply-"+points[last])
	}
	return out
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
