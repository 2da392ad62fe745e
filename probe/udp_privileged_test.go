//go:build linux

package probe

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// echoIn starts a UDP echo server on port in ns; t's cleanup stops it.
func echoIn(t *testing.T, ns *topology.NetNS, v6 bool, port int) {
	t.Helper()
	network, addr := "udp4", fmt.Sprintf("0.0.0.0:%d", port)
	if v6 {
		network, addr = "udp6", fmt.Sprintf("[::]:%d", port)
	}
	c, err := topology.Open(ns, func() (net.PacketConn, error) { return net.ListenPacket(network, addr) })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}

// TestPrivilegedUDPProbe sends UDP probes from a to b over IPv4 and IPv6:
// to a Go echo server (the token comes back), to a closed port (the ICMP
// port unreachable quoting the probe, read from the error queue), and to
// port 53 of a dnsmasq in b, when it is installed (a DNS response echoing
// the question). The socket leaves no goroutine behind.
func TestPrivilegedUDPProbe(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) { testUDPProbe(t, v6) })
	}
}

func testUDPProbe(t *testing.T, v6 bool) {
	p := newPair(t, v6)
	const echo, closed = 7101, 7102
	echoIn(t, p.b, v6, echo)
	// b answers every probe to the closed port: no ICMP rate limit there
	// (by default 6, then 1 a second, per source).
	if v6 {
		in(t, p.b, "sysctl", "-qw", "net.ipv6.icmp.ratelimit=0")
	} else {
		in(t, p.b, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	}
	goroutines := runtime.NumGoroutine()
	cfg := Config{Target: p.addrB, Proto: UDP, Port: echo, Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	conn, err := Open(p.a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		port int
		want Reply
		code uint8
	}{
		{"echo", echo, UDPReply, 0},
		{"closed", closed, Unreachable, map[bool]uint8{false: 3, true: 4}[v6]},
		{"echo again", echo, UDPReply, 0},
	} {
		c := cfg
		c.Port = tc.port
		res, err := Run(context.Background(), conn, c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkAnswered(t, res, tc.want, p.addrB, c.Timeout)
		for _, pr := range res.Probes {
			if pr.ReplyCode != tc.code {
				t.Errorf("%s: probe %d: code %d, want %d", tc.name, pr.Seq, pr.ReplyCode, tc.code)
			}
		}
		rttSummary(t, fmt.Sprintf("UDP %s port %d", tc.name, tc.port), res)
	}
	t.Run("dnsmasq", func(t *testing.T) { testDNSProbe(t, p, conn, cfg) })
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, goroutines)
}

// testDNSProbe runs dnsmasq in b on port 53 of b's address only, with no
// upstream (it answers at once, from itself), and probes it.
func testDNSProbe(t *testing.T, p *nsPair, conn Conn, cfg Config) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if os.Getenv("CI") == "true" { // make test installs it: CI must run this for real
			t.Fatalf("CI=true: %v (apt-get install dnsmasq-base)", err)
		}
		t.Skipf("skipping: %v (apt-get install dnsmasq-base)", err)
	}
	cmd := exec.Command("nsenter", "--net="+p.b.Path(), "--", bin, "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--no-poll", "--pid-file=", "--port=53", "--bind-interfaces",
		"--listen-address="+p.addrB.String(), "--except-interface=lo", "--local=/cluster.local/")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	cfg.Port = 53
	cfg.Count = 1
	deadline := time.Now().Add(3 * time.Second)
	for { // until dnsmasq listens: before, the port unreachable answers too
		res, err := Run(context.Background(), conn, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Answered == 1 && res.Probes[0].Reply == DNSReply {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq in b does not answer after 3s: %+v", res.Probes[0])
		}
	}
	cfg.Count = 20
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkAnswered(t, res, DNSReply, p.addrB, cfg.Timeout)
	for _, pr := range res.Probes {
		if pr.ReplyCode != 3 {
			t.Errorf("probe %d: RCODE %d, want 3 (NXDOMAIN, dnsmasq is authoritative for cluster.local with --local)", pr.Seq, pr.ReplyCode)
		}
	}
	rttSummary(t, "DNS to dnsmasq", res)
}
