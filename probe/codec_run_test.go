package probe

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// peerConn is a fake Conn for any codec: it makes the run's codec with
// newCodec, and its peer turns every request into what the socket would
// read back, a datagram or an ICMP error, or nothing. Like stampConn it
// stamps every send.
type peerConn struct {
	*echoConn
	newCodec func(Config) (codec, error)
	peer     func(b []byte, dst netip.AddrPort) (msg []byte, e *icmpErr)
	mu       sync.Mutex
	errs     chan icmpErr
}

var _ Conn = (*peerConn)(nil)

func newPeerConn(newCodec func(Config) (codec, error), peer func([]byte, netip.AddrPort) ([]byte, *icmpErr)) *peerConn {
	c := newEchoConn()
	c.stamps = make(chan txStamp, 1024)
	return &peerConn{echoConn: c, newCodec: newCodec, peer: peer, errs: make(chan icmpErr, 1024)}
}

func (c *peerConn) codec(cfg Config) (codec, error) { return c.newCodec(cfg) }

func (c *peerConn) sendKeyed(b []byte, dst netip.AddrPort, now func() time.Time) (time.Time, uint32, error) {
	at := now()
	c.mu.Lock()
	key := c.nextKey
	c.nextKey++
	c.mu.Unlock()
	for _, s := range goodStamps(key, at) {
		c.stamps <- s
	}
	msg, e := c.peer(bytes.Clone(b), dst) // the kernel copies the packet: the codec rewrites b
	if msg != nil {
		c.queue <- msg
	}
	if e != nil {
		c.errs <- *e
	}
	return at, key, nil
}

// read hands over one stamp, ICMP error or datagram, from the target.
// A zero deadline takes only what is there.
func (c *peerConn) read(rx *rxBatch, deadline time.Time, now func() time.Time) error {
	select {
	case s := <-c.stamps:
		rx.stamps = append(rx.stamps, s)
		return nil
	case e := <-c.errs:
		c.deliverErr(rx, e, now)
		return nil
	case m := <-c.queue:
		c.deliver(rx, m, now)
		return nil
	default:
		if deadline.IsZero() {
			return nil
		}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case s := <-c.stamps:
		rx.stamps = append(rx.stamps, s)
	case e := <-c.errs:
		c.deliverErr(rx, e, now)
	case m := <-c.queue:
		c.deliver(rx, m, now)
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
	return nil
}

// deliver puts datagram m from the target into rx as the socket reads it.
func (c *peerConn) deliver(rx *rxBatch, m []byte, now func() time.Time) {
	rx.msg, rx.from, rx.at = rx.buf[:copy(rx.buf, m)], udpTarget, now()
}

// deliverErr puts ICMP error e into rx as the socket reads it.
func (c *peerConn) deliverErr(rx *rxBatch, e icmpErr, now func() time.Time) {
	e.at = now()
	rx.errs = append(rx.errs, e)
}

// TestRunTCPThroughTheCodec runs TCP probes against a fake target that
// answers even probes with a SYN-ACK and odd ones with a RST, but the
// fifth, which an ICMP unreachable quoting only 8 bytes answers, and the
// seventh, which it drops.
func TestRunTCPThroughTheCodec(t *testing.T) {
	cfg := Config{Target: tcpTarget4, Proto: TCP, Port: 443, Count: 12, Interval: time.Millisecond, Timeout: 200 * time.Millisecond, Size: 56, RunID: 0x77}
	var cd *tcpCodec
	conn := newPeerConn(func(c Config) (codec, error) {
		cd = newTCPCodec(c, testBlock, nil)
		cd.src = tcpSrc4
		return cd, nil
	}, func(syn []byte, dst netip.AddrPort) ([]byte, *icmpErr) {
		seq := uint32(syn[37])
		switch {
		case dst.Addr() != tcpTarget4 || dst.Port() != 0:
			t.Errorf("SYN sent to %v, want %v with port 0", dst, tcpTarget4)
		case seq == 5:
			return nil, &icmpErr{typ: 3, code: 13, from: tcpSrc4, data: syn[:8]}
		case seq == 7:
			return nil, nil
		}
		if seq%2 == 1 {
			return tcpAnswer(cd, syn, tcpRST|tcpACK), nil
		}
		return tcpAnswer(cd, syn, tcpSYN|tcpACK), nil
	})
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantGoodStamps(t, res)
	for _, p := range res.Probes {
		want := map[bool]Reply{true: SynAck, false: Reset}[p.Seq%2 == 0]
		switch p.Seq {
		case 5:
			want = Unreachable
		case 7:
			want = NoReply
		}
		if p.Reply != want || p.Answered() != (want != NoReply) {
			t.Errorf("probe %d: %v (answered %v), want %v", p.Seq, p.Reply, p.Answered(), want)
		}
		if p.Seq == 5 && (p.ReplyCode != 13 || p.ReplyFrom != tcpSrc4) {
			t.Errorf("probe 5: code %d from %v, want 13 from %v", p.ReplyCode, p.ReplyFrom, tcpSrc4)
		}
		if got, want := p.SrcPort, cd.sport(p.Seq); got != want || !testBlock.contains(got) {
			t.Errorf("probe %d left from port %d, want %d, in the run's block", p.Seq, got, want)
		}
	}
	if res.Answered != 11 || res.LateReplies != 0 {
		t.Errorf("answered %d, late %d; want 11, 0", res.Answered, res.LateReplies)
	}
}

// peerSport is the source port of the fake UDP socket.
const peerSport = 40123

// TestRunDNSThroughTheCodec runs DNS probes against a fake server that
// answers NXDOMAIN, and a closed port for probe 2 (the quote of the
// query), and checks what each probe got, the socket's source port
// among it.
func TestRunDNSThroughTheCodec(t *testing.T) {
	cfg := udpConfig(53)
	cfg.Count, cfg.Interval, cfg.Timeout = 5, time.Millisecond, 200*time.Millisecond
	conn := newPeerConn(func(c Config) (codec, error) { return newUDPCodec(c, peerSport), nil }, func(q []byte, dst netip.AddrPort) ([]byte, *icmpErr) {
		if dst != netip.AddrPortFrom(udpTarget, 53) {
			t.Errorf("query sent to %v", dst)
		}
		if q[1] == 2 { // query id: the sequence's low 16 bits
			return nil, &icmpErr{typ: 3, code: 3, from: udpTarget, data: q}
		}
		return dnsResponse(q, 3, false), nil
	})
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Probes {
		want, code := DNSReply, uint8(3)
		if p.Seq == 2 {
			want = Unreachable
		}
		if p.Reply != want || p.ReplyCode != code || p.ReplyFrom != udpTarget {
			t.Errorf("probe %d: %v code %d from %v, want %v code %d from %v", p.Seq, p.Reply, p.ReplyCode, p.ReplyFrom, want, code, udpTarget)
		}
		if p.SrcPort != peerSport {
			t.Errorf("probe %d left from port %d, want the socket's %d", p.Seq, p.SrcPort, peerSport)
		}
	}
}

// TestRunRefusesSocketOfOtherProto: a run of one protocol on a socket
// opened for another sends nothing.
func TestRunRefusesSocketOfOtherProto(t *testing.T) {
	cfg := testConfig(3)
	cfg.Proto, cfg.Port = TCP, 80
	conn := newEchoConn()
	if _, err := Run(context.Background(), conn, cfg); err == nil || conn.sent != 0 {
		t.Errorf("TCP run on an ICMP socket: %v, %d sent; want an error and nothing sent", err, conn.sent)
	}
}
