//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// transportResult is section 7 (issue 12): the TCP SYN and DNS probes'
// round trips against real clients on the same path, alternating rounds.
// The comparable figure is the probe's user-space round trip,
// rtt_user_us (the send call to the return of the read), because that is
// what a client times around its own calls; rtt_us (kernel send stamp to
// the capture on the pod's interface) leaves the pod's own send and
// receive paths out (docs/benchmarks.md).
type transportResult struct {
	TCP *transportRow `json:"tcp"`
	DNS *transportRow `json:"dns"`
}

type transportRow struct {
	Client         string    `json:"client"`
	Rounds         int       `json:"rounds"`
	ProbesPerRound int       `json:"probes_per_round"`
	ProbeUserP50   []float64 `json:"probe_rtt_user_p50_us"`
	ProbeKernelP50 []float64 `json:"probe_rtt_p50_us"`
	ClientP50      []float64 `json:"client_p50_us"`
	PerRound       []float64 `json:"ratio_per_round"` // client p50 / probe rtt_user_us p50
	Ratio          interval  `json:"ratio"`
	Check          string    `json:"scale_check"` // hping3 or dig, coarser clocks: logged, not judged
	Goal           string    `json:"goal"`
	Verdict        verdict   `json:"verdict"`
}

func (b *bench) transport(ctx context.Context, r *results) error {
	l, err := lab.Up(ctx, lab.Config{Backends: true})
	if err != nil {
		return err
	}
	defer l.Close()
	pod, dst := l.Nodes[0].Pod, l.Nodes[1].Pod.Addr
	n, rounds := b.counts(50, 20), b.counts(8, 2)
	res := &transportResult{}
	tcpTo, dnsTo := netip.AddrPortFrom(dst, lab.BackendPort), netip.AddrPortFrom(dst, lab.DNSPort)
	if res.TCP, err = b.transportRow(ctx, l, "tcp", lab.BackendPort, "connect() timed in Go", rounds, n,
		func() ([]float64, error) { return timeConnects(pod.NS, tcpTo, n) }); err != nil {
		return fmt.Errorf("tcp: %w", err)
	}
	res.TCP.Check = b.hping3Check(ctx, l, n, res.TCP)
	if res.DNS, err = b.transportRow(ctx, l, "udp", lab.DNSPort, "DNS query timed in Go (one UDP socket)", rounds, n,
		func() ([]float64, error) { return timeQueries(pod.NS, dnsTo, n) }); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	res.DNS.Check = b.digCheck(ctx, l, res.DNS)
	r.Transport = res
	return nil
}

// transportRow alternates a trace of n probes (5 ms apart) with n timed
// client calls, rounds times.
func (b *bench) transportRow(ctx context.Context, l *lab.Lab, proto string, port int, client string, rounds, n int, timed func() ([]float64, error)) (*transportRow, error) {
	row := &transportRow{Client: client, Rounds: rounds, ProbesPerRound: n, Goal: "client / probe at the socket within 0.95-1.05 (95% CI)"}
	for range rounds {
		t, err := b.trace(ctx, l, "--proto", proto, "--port", strconv.Itoa(port), "--count", strconv.Itoa(n), "--interval", "5ms")
		if err != nil {
			return nil, err
		}
		if t.report.Probes.Received == 0 {
			return nil, fmt.Errorf("no %s probe answered", proto)
		}
		c, err := timed()
		if err != nil {
			return nil, err
		}
		row.ProbeUserP50 = append(row.ProbeUserP50, t.report.UserRTT.P50)
		row.ProbeKernelP50 = append(row.ProbeKernelP50, t.report.RTT.P50)
		row.ClientP50 = append(row.ClientP50, median(c))
		row.PerRound = append(row.PerRound, median(c)/t.report.UserRTT.P50)
	}
	row.Ratio = meanCI(row.PerRound)
	row.Verdict = judge(row.Ratio, rttBand)
	return row, nil
}

// clientGap is the pause between timed calls, the probes' interval.
const clientGap = 5 * time.Millisecond

// timeConnects times n blocking connect()s to to from sockets made in ns
// beforehand (entering a netns costs more than the round trip), in us.
func timeConnects(ns *topology.NetNS, to netip.AddrPort, n int) ([]float64, error) {
	var us []float64
	for range n {
		s, err := topology.Open(ns, func() (fd, error) {
			s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			return fd(s), err
		})
		if err != nil {
			return nil, fmt.Errorf("open TCP socket in %s: %w", ns, err)
		}
		start := time.Now()
		err = connectRetry(int(s), sockaddr4(to))
		us = append(us, float64(time.Since(start).Nanoseconds())/1000)
		s.Close()
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", to, err)
		}
		time.Sleep(clientGap)
	}
	return us, nil
}

// connectRetry is connect(2) surviving EINTR (Go's preemption signal):
// the connection goes on, and poll waits for it.
func connectRetry(s int, sa unix.Sockaddr) error {
	if err := unix.Connect(s, sa); err != unix.EINTR {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(s), Events: unix.POLLOUT}}
	for {
		if _, err := unix.Poll(pfd, 1000); err != unix.EINTR {
			return err
		}
	}
}

// dnsQuery is an A query for bench.cluster.local: a name in the pods'
// zone that the server does not know, so it answers NXDOMAIN itself.
var dnsQuery = []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'b', 'e', 'n', 'c', 'h', 7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 1, 0, 1}

// timeQueries times n DNS queries on one UDP socket made in ns, in us.
func timeQueries(ns *topology.NetNS, to netip.AddrPort, n int) ([]float64, error) {
	s, err := topology.Open(ns, func() (fd, error) {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return fd(s), err
	})
	if err != nil {
		return nil, fmt.Errorf("open UDP socket in %s: %w", ns, err)
	}
	defer s.Close()
	if err := unix.SetsockoptTimeval(int(s), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	var us []float64
	for range n {
		start := time.Now()
		if err := unix.Sendto(int(s), dnsQuery, 0, sockaddr4(to)); err != nil {
			return nil, err
		}
		for {
			_, _, err = unix.Recvfrom(int(s), buf, 0)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("DNS query to %s: %w", to, err)
		}
		us = append(us, float64(time.Since(start).Nanoseconds())/1000)
		time.Sleep(clientGap)
	}
	return us, nil
}

func sockaddr4(a netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
}

var (
	hpingRTT  = regexp.MustCompile(`flags=SA .*rtt=([0-9.]+) ms`)
	digQuery  = regexp.MustCompile(`Query time: (\d+) msec`)
	scaleNote = "scale check only, not judged"
)

// hping3Check runs hping3 -S against the same port: it prints its round
// trips to 0.1 ms, so it checks the scale of the figures only.
func (b *bench) hping3Check(ctx context.Context, l *lab.Lab, n int, row *transportRow) string {
	out, err := l.Command(ctx, l.Nodes[0].Pod.NSPath, "hping3", "-S", "-p", strconv.Itoa(lab.BackendPort), "-c", strconv.Itoa(n),
		"-i", "u5000", l.Nodes[1].Pod.Addr.String()).CombinedOutput()
	var ms []float64
	for _, m := range hpingRTT.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		ms = append(ms, v*1000)
	}
	if len(ms) == 0 {
		return fmt.Sprintf("hping3 -S: no SYN-ACK (%v): %s", err, lab.QuoteOutput(out))
	}
	return fmt.Sprintf("hping3 -S: %d of %d SYN-ACKs, p50 %.0f us (printed to 0.1 ms) = %.2f x the probe's rtt_user_us, %.2f x its rtt_us (%s)",
		len(ms), n, median(ms), median(ms)/median(row.ProbeUserP50), median(ms)/median(row.ProbeKernelP50), scaleNote)
}

// digCheck runs dig once: it prints whole milliseconds.
func (b *bench) digCheck(ctx context.Context, l *lab.Lab, row *transportRow) string {
	out, err := l.Command(ctx, l.Nodes[0].Pod.NSPath, "dig", "+tries=1", "+time=1", "@"+l.Nodes[1].Pod.Addr.String(), "dig.cluster.local").CombinedOutput()
	m := digQuery.FindSubmatch(out)
	if m == nil {
		return fmt.Sprintf("dig: no query time (%v)", err)
	}
	return fmt.Sprintf("dig: query time %s ms (whole ms; the probe's rtt_user_us p50 %.0f us; %s)", m[1], median(row.ProbeUserP50), scaleNote)
}
