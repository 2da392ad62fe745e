package main

import (
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// RTT fidelity of the TCP and DNS probes (issue 12): on the same path, in
// the same test, a probe's round trip at the probe socket (user-space
// times at both ends, rtt_user_us) against what an ordinary client times
// the same way: a plain blocking connect() for TCP (SYN out, SYN-ACK in,
// the ACK sent within the call), a DNS query on a UDP socket for DNS.
// Ratios over 100 samples each, not absolute microseconds: a busy 2-vCPU
// machine moves both.

// timeIt returns the median of n runs of fn, each timed around the call.
func timeIt(t *testing.T, n int, fn func() error) time.Duration {
	t.Helper()
	var d []time.Duration
	for range n {
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// socketIn makes a socket of typ in ns: created there, used from here.
func socketIn(t *testing.T, ns *topology.NetNS, typ int) int {
	t.Helper()
	var fd int
	err := ns.Do(func() (err error) { fd, err = unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0); return err })
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func sockaddr(a netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
}

// connectOnce times connect() alone: the sockets are made in the netns
// beforehand (entering it costs more than the round trip), n of them.
func connectOnce(t *testing.T, ns *topology.NetNS, to netip.AddrPort, n int) func() error {
	fds := make([]int, n)
	for i := range fds {
		fds[i] = socketIn(t, ns, unix.SOCK_STREAM)
	}
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	next := 0
	return func() error {
		fd := fds[next]
		next++
		err := unix.Connect(fd, sockaddr(to))
		if err != unix.EINTR { // Go's preemption signal: the connection goes on
			return err
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		for {
			if _, err := unix.Poll(pfd, 1000); err != unix.EINTR {
				return err
			}
		}
	}
}

// dnsOnce sends one A query for name to the server and waits for the answer.
func dnsOnce(t *testing.T, ns *topology.NetNS, to netip.AddrPort) func() error {
	fd := socketIn(t, ns, unix.SOCK_DGRAM)
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		t.Fatal(err)
	}
	q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 6, 'f', 'i', 'd', 'e', 'l', 'i', 7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 1, 0, 1}
	buf := make([]byte, 512)
	return func() error {
		if err := unix.Sendto(fd, q, 0, sockaddr(to)); err != nil {
			return err
		}
		for {
			if _, _, err := unix.Recvfrom(fd, buf, 0); err != unix.EINTR {
				return err
			}
		}
	}
}

func TestPrivilegedTransportRTTFidelity(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Backends: true})
	pod, dst := l.Nodes[0].Pod, l.Nodes[1].Pod.Addr
	for _, tc := range []struct {
		name, proto string
		port        int
		client      func() error
		// the bounds of the client's median over the probe's. connect()
		// adds the ephemeral port's bind and the ACK to the SYN's round
		// trip; a query on one socket does what the DNS probe does. On
		// this VM a round trip runs warm (~30 us) or from cold caches
		// (~130 us), and a loaded machine switches between the two from
		// one round to the next: under two busy loops single rounds gave
		// 0.27-2.88 and a median of seven 0.52. So the test catches a
		// figure off by more than a factor of three (a wait, a clock, a
		// unit), and make bench judges 0.95-1.05 over paired rounds.
		lo, hi float64
	}{
		{"tcp-connect", "tcp", lab.BackendPort, connectOnce(t, pod.NS, netip.AddrPortFrom(dst, lab.BackendPort), 150), 1.0 / 3, 3},
		{"dns-query", "udp", lab.DNSPort, dnsOnce(t, pod.NS, netip.AddrPortFrom(dst, lab.DNSPort)), 1.0 / 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Rounds alternate the client and the probe, each round giving
			// one ratio, and the median round is judged: a loaded machine
			// moves both by a factor over seconds (the probe's p50 at the
			// socket 32-120 us under two busy loops), which a client timed
			// before and after one trace did not see.
			const rounds, n = 7, 20
			var ratios []float64
			for range rounds {
				client := timeIt(t, n, tc.client)
				args := []string{"trace", "--format", "json", "--netns", pod.NSPath, "--node-netns", l.Nodes[0].NSPath, "--to", dst.String(),
					"--proto", tc.proto, "--port", strconv.Itoa(tc.port), "--count", strconv.Itoa(n), "--interval", "5ms"}
				code, stdout, stderr := runCLI(t, args...)
				if code != cli.ExitOK {
					t.Fatalf("trace: exit %d\n%s", code, stderr)
				}
				var r struct {
					RTT  stats `json:"rtt_us"`
					User stats `json:"rtt_user_us"`
				}
				decodeInto(t, stdout, &r)
				c := float64(client.Nanoseconds()) / 1e3
				ratios = append(ratios, c/r.User.P50)
				t.Logf("%s: probe p50 %.1f us at the socket (%.1f us kernel send to capture), client p50 %.1f us: ratio %.2f",
					tc.name, r.User.P50, r.RTT.P50, c, c/r.User.P50)
			}
			slices.Sort(ratios)
			if ratio := ratios[rounds/2]; ratio < tc.lo || ratio > tc.hi {
				t.Errorf("client/probe: median of %d rounds %.2f (rounds %.2f), want %.2f-%.2f", rounds, ratio, ratios, tc.lo, tc.hi)
			}
		})
	}
	// dig times in whole milliseconds: logged, as a check of scale only.
	if _, err := exec.LookPath("dig"); err != nil {
		if os.Getenv("CI") == "true" { // make deps installs it
			t.Fatalf("CI=true: no dig (apt-get install bind9-dnsutils): %v", err)
		}
		t.Skip("no dig (bind9-dnsutils)")
	}
	out, err := l.Command(t.Context(), pod.NSPath, "dig", "+tries=1", "+time=1", "@"+dst.String(), "dig.cluster.local").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Query time: (\d+) msec`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no query time in dig's output:\n%s", out)
	}
	t.Logf("dig: query time %s ms", m[1])
}
