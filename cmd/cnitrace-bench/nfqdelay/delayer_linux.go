package nfqdelay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// readTimeout bounds every receive, so Run sees a cancelled context.
const readTimeout = 50 * time.Millisecond

// queueLen bounds the packets held at once; more are accepted at once.
const queueLen = 4096

// Delayer is a netlink socket bound to one NFQUEUE inside a netns.
type Delayer struct {
	fd       int
	cfg      Config
	accepted atomic.Uint64
	dropped  atomic.Uint64
	maxLate  atomic.Int64 // ns; written by the releaser only
	mu       sync.Mutex
	late     []time.Duration // the first lateSamples verdicts' lateness
	holds    []Hold          // the first MaxHolds probes'
}

type nlSocket int

func (s nlSocket) Close() error { return unix.Close(int(s)) }

// Open binds queue cfg.Queue in ns. The socket stays bound to ns.
func Open(ns *topology.NetNS, cfg Config) (*Delayer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fd, err := topology.Open(ns, func() (nlSocket, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return nlSocket(fd), err
	})
	if err != nil {
		return nil, fmt.Errorf("open nfqueue socket in %s: %w", ns, err)
	}
	d := &Delayer{fd: int(fd), cfg: cfg}
	if err := d.bind(); err != nil {
		d.Close()
		return nil, fmt.Errorf("bind nfqueue %d in %s: %w", cfg.Queue, ns, err)
	}
	return d, nil
}

func (d *Delayer) bind() error {
	if err := unix.Bind(d.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(d.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	for _, m := range [][]byte{bindMessage(d.cfg.Queue), copyPacketMessage(d.cfg.Queue)} {
		if err := d.request(m); err != nil {
			return err
		}
	}
	return nil
}

// request sends m and waits for its acknowledgement.
func (d *Delayer) request(m []byte) error {
	if err := unix.Sendto(d.fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(d.fd, buf, 0)
	if err != nil {
		return fmt.Errorf("read acknowledgement: %w", err)
	}
	_, err = parseMessages(buf[:n])
	return err
}

// Close releases the queue; packets still held are released by the kernel
// as the socket goes (with --queue-bypass they pass).
func (d *Delayer) Close() error { return unix.Close(d.fd) }

// Stats returns what the Delayer did so far.
func (d *Delayer) Stats() Stats {
	d.mu.Lock()
	med := medianOf(d.late)
	holds := slices.Clone(d.holds)
	d.mu.Unlock()
	return Stats{Accepted: d.accepted.Load(), Dropped: d.dropped.Load(),
		MaxLate: time.Duration(d.maxLate.Load()), MedianLate: med, Holds: holds}
}

type held struct {
	id      uint32
	at      time.Time // when it was read from the queue
	stamp   time.Time // the skb's stamp (zero: none)
	release time.Time
	token   probe.Token
	reply   bool
	isProbe bool
}

// Run holds every queued packet for cfg.Delay and then accepts it (or drops
// it with probability cfg.Loss), in arrival order, until ctx is done.
func (d *Delayer) Run(ctx context.Context) error {
	queue := make(chan held, queueLen)
	errc := make(chan error, 1)
	go func() { errc <- d.release(queue) }()
	rerr := d.receive(ctx, queue)
	close(queue)
	return errors.Join(rerr, <-errc)
}

// receive reads queued packets and stamps their release times.
func (d *Delayer) receive(ctx context.Context, queue chan<- held) error {
	buf := make([]byte, maxPacketMsgs)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(d.fd, buf, 0)
		at := time.Now()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read nfqueue %d: %w", d.cfg.Queue, err)
		}
		pkts, err := parseMessages(buf[:n])
		if err != nil {
			return fmt.Errorf("read nfqueue %d: %w", d.cfg.Queue, err)
		}
		for _, p := range pkts {
			h := held{id: p.id, at: at, stamp: p.stamp, release: at.Add(d.cfg.Delay)}
			h.token, h.reply, h.isProbe = probeToken(p.payload)
			select {
			case queue <- h:
			default: // full: let it through now rather than stall the kernel's queue
				d.verdict(p.id, verdictAccept)
			}
		}
	}
	return nil
}

// release gives each held packet its verdict at its release time.
func (d *Delayer) release(queue <-chan held) error {
	for h := range queue {
		waitUntil(h.release)
		now := time.Now()
		late := int64(now.Sub(h.release))
		if late > d.maxLate.Load() {
			d.maxLate.Store(late)
		}
		v := uint32(verdictAccept)
		if d.cfg.Loss > 0 && rand.Float64() < d.cfg.Loss {
			v = verdictDrop
		}
		d.mu.Lock()
		if len(d.late) < lateSamples {
			d.late = append(d.late, time.Duration(late))
		}
		if h.isProbe && v == verdictAccept && len(d.holds) < MaxHolds {
			hd := Hold{Token: h.token, Reply: h.reply, Hold: now.Sub(h.at)}
			if !h.stamp.IsZero() {
				hd.SinceStamp = now.Sub(h.stamp)
			}
			d.holds = append(d.holds, hd)
		}
		d.mu.Unlock()
		if err := d.verdict(h.id, v); err != nil {
			return err
		}
	}
	return nil
}

func (d *Delayer) verdict(id uint32, v uint32) error {
	err := unix.Sendto(d.fd, verdictMessage(d.cfg.Queue, id, v), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	if err != nil {
		return fmt.Errorf("verdict for packet %d: %w", id, err)
	}
	if v == verdictAccept {
		d.accepted.Add(1)
	} else {
		d.dropped.Add(1)
	}
	return nil
}
