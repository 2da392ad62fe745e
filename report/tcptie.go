package report

import (
	"net/netip"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// A TCP probe's SYN carries its token (run id and sequence) in an option,
// but its answer, a SYN-ACK or an RST, carries none: only the
// acknowledgement of the probe's ISN, whose low 15 bits are the probe's
// sequence modulo 32768 (probe.TCPAnswerSeq). tcpTies ties each answer to
// the SYN seen at the same point, by the reversed 4-tuple as seen there
// and those 15 bits: NAT rewrites addresses and ports between points,
// never within one, so the tuple of the SYN at a point, reversed, is the
// tuple of its answer at that point.
//
// Its memory is bounded: an entry goes when its answer arrives, when its
// probe is folded (forget), and, should more than maxTiedProbes probes
// wait for answers, the oldest probe's entries go first. At most
// probe.MaxInFlight probes of a source wait for answers at once, so the
// bound is never reached by the probes of a run in flight.
type tcpTies struct {
	tuples map[tcpTuple]tiedProbe
	probes map[tiedProbe]tieEntry
	fifo   []tieAge // probes in the order they were first tied; stale ones are skipped
	gen    uint64
	max    int
}

// maxTiedProbes bounds the probes whose SYNs wait for their answers: those
// in flight of two sources, with room for the lost ones.
const maxTiedProbes = 4 * probe.MaxInFlight

// tiedProbe is a probe of a source.
type tiedProbe struct {
	src int
	seq uint32
}

// tcpTuple is how a SYN looked at a point, which its answer reverses: the
// addresses, the ports and the low 15 bits of the probe's sequence.
type tcpTuple struct {
	point        string
	src, dst     netip.Addr
	sport, dport uint16
	low          uint16
}

type tieEntry struct {
	tuples []tcpTuple // at most one per point of the path
	gen    uint64
}

type tieAge struct {
	p   tiedProbe
	gen uint64
}

func newTCPTies(max int) *tcpTies {
	return &tcpTies{tuples: map[tcpTuple]tiedProbe{}, probes: map[tiedProbe]tieEntry{}, max: max}
}

// request notes the SYN of probe p seen as o.
func (t *tcpTies) request(o capture.Observation, p tiedProbe) {
	k := tcpTuple{point: o.Point, src: o.Src, dst: o.Dst, sport: o.SrcPort, dport: o.DstPort, low: uint16(p.seq & lowSeqMask)}
	if old, ok := t.tuples[k]; ok {
		if old == p {
			return // the same SYN seen again at the point
		}
		t.drop(old, k) // a newer probe on the same tuple and low sequence: the older one was answered or lost
	}
	e, ok := t.probes[p]
	if !ok {
		t.gen++
		e.gen = t.gen
		t.fifo = append(t.fifo, tieAge{p, e.gen})
	}
	e.tuples = append(e.tuples, k)
	t.probes[p] = e
	t.tuples[k] = p
	t.evict()
}

// reply returns the probe whose SYN the SYN-ACK or RST o answers at its
// point, and forgets the tie: a second answer (a retransmitted SYN-ACK)
// finds none.
func (t *tcpTies) reply(o capture.Observation) (tiedProbe, bool) {
	low, ok := probe.TCPAnswerSeq(o.TCPAck)
	if !ok {
		return tiedProbe{}, false
	}
	k := tcpTuple{point: o.Point, src: o.Dst, dst: o.Src, sport: o.DstPort, dport: o.SrcPort, low: uint16(low)}
	p, ok := t.tuples[k]
	if !ok {
		return tiedProbe{}, false
	}
	t.drop(p, k)
	return p, true
}

// forget drops every tie of probe p: it was folded, nothing of it counts
// any more.
func (t *tcpTies) forget(p tiedProbe) {
	e, ok := t.probes[p]
	if !ok {
		return
	}
	for _, k := range e.tuples {
		delete(t.tuples, k)
	}
	delete(t.probes, p)
	t.compact()
}

// drop removes tuple k of probe p.
func (t *tcpTies) drop(p tiedProbe, k tcpTuple) {
	delete(t.tuples, k)
	e := t.probes[p]
	for i, x := range e.tuples {
		if x == k {
			e.tuples = append(e.tuples[:i], e.tuples[i+1:]...)
			break
		}
	}
	if len(e.tuples) == 0 {
		delete(t.probes, p)
		t.compact()
		return
	}
	t.probes[p] = e
}

// evict forgets the oldest probes while more than max wait.
func (t *tcpTies) evict() {
	for len(t.probes) > t.max && len(t.fifo) > 0 {
		a := t.fifo[0]
		t.fifo = t.fifo[1:]
		if e, ok := t.probes[a.p]; ok && e.gen == a.gen {
			t.forget(a.p)
		}
	}
}

// compact keeps the FIFO of ages within a small multiple of the live
// probes: every answered probe leaves a stale entry in it.
func (t *tcpTies) compact() {
	if len(t.fifo) <= 2*len(t.probes)+64 {
		return
	}
	live := t.fifo[:0]
	for _, a := range t.fifo {
		if e, ok := t.probes[a.p]; ok && e.gen == a.gen {
			live = append(live, a)
		}
	}
	clear(t.fifo[len(live):])
	t.fifo = live
}

// lowSeqMask keeps the 15 bits of a probe's sequence its ISN carries.
const lowSeqMask = 1<<15 - 1
