package report

import (
	"net/netip"
	"slices"

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
// tuple of its answer at that point. Almost: a point the request crosses
// before a NAT hook and the reply after its reverse (a bridge's tap with
// br_netfilter: the request's DNAT is done at the bridge port, the reply's
// un-DNAT only at POSTROUTING) sees the two in different states. An answer
// whose point has no SYN on its tuple is therefore tied by the reversed
// tuple alone, to the SYN seen so at another point: conntrack restores the
// tuple of some point, and a tuple with the 15 bits names one probe in
// flight (each has a source port of its own). The rings of the points are
// read apart, so that other point's SYN may come in after the answer: an
// answer tied to nothing waits (hold) until a SYN on its tuple comes in
// (request returns it), at most maxHeld of them, the oldest given up on
// first.
//
// Its memory is bounded: an entry goes when its answer arrives, when its
// probe is folded (forget), and, should more than maxTiedProbes probes
// wait for answers, the oldest probe's entries go first. At most
// probe.MaxInFlight probes of a source wait for answers at once, so the
// bound is never reached by the probes of a run in flight.
type tcpTies struct {
	tuples map[tcpTuple]tiedProbe
	flows  map[tcpTuple]tiedProbe // the tuples without their point
	probes map[tiedProbe]tieEntry
	fifo   []tieAge // probes in the order they were first tied; stale ones are skipped
	gen    uint64
	max    int
	held   map[tcpTuple][]capture.Observation // answers tied to nothing yet, by their reversed tuple without point
	queue  []tcpTuple                         // the held answers' tuples, oldest first
	nHeld  int
	// retired are the answered probes whose flows are kept, oldest first.
	retired []retiredFlows
}

// maxHeld bounds the answers waiting for a SYN seen at another point.
const maxHeld = 4096

// maxRetired bounds the answered probes whose flows are kept: at 10,000
// probes a second, 400 ms of them.
const maxRetired = 4096

type retiredFlows struct {
	p     tiedProbe
	flows []tcpTuple
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
	flows  []tcpTuple // the distinct tuples seen, without their point
	gen    uint64
}

type tieAge struct {
	p   tiedProbe
	gen uint64
}

func newTCPTies(max int) *tcpTies {
	return &tcpTies{tuples: map[tcpTuple]tiedProbe{}, flows: map[tcpTuple]tiedProbe{}, probes: map[tiedProbe]tieEntry{},
		held: map[tcpTuple][]capture.Observation{}, max: max}
}

// request notes the SYN of probe p seen as o, and returns the answers held
// on its tuple, now tied to p: the caller places them.
func (t *tcpTies) request(o capture.Observation, p tiedProbe) []capture.Observation {
	t.tie(o, p)
	f := tcpTuple{src: o.Src, dst: o.Dst, sport: o.SrcPort, dport: o.DstPort, low: uint16(p.seq & lowSeqMask)}
	waiting := t.held[f]
	if len(waiting) == 0 {
		return nil
	}
	delete(t.held, f)
	t.nHeld -= len(waiting)
	var out []capture.Observation
	for _, a := range waiting {
		if q, ok := t.reply(a); ok && q == p {
			out = append(out, a)
		}
	}
	return out
}

// hold keeps answer o, tied to nothing yet, for a SYN on its tuple seen
// at another point; it returns how many held answers were given up on to
// make room.
func (t *tcpTies) hold(o capture.Observation) (dropped int) {
	low, ok := probe.TCPAnswerSeq(o.TCPAck)
	if !ok {
		return 1
	}
	f := tcpTuple{src: o.Dst, dst: o.Src, sport: o.DstPort, dport: o.SrcPort, low: uint16(low)}
	t.held[f] = append(t.held[f], o)
	t.queue = append(t.queue, f)
	t.nHeld++
	for t.nHeld > maxHeld && len(t.queue) > 0 {
		g := t.queue[0]
		t.queue = t.queue[1:]
		if h := t.held[g]; len(h) > 0 {
			t.held[g] = h[1:]
			if len(h) == 1 {
				delete(t.held, g)
			}
			t.nHeld--
			dropped++
		}
	}
	if len(t.queue) > 2*t.nHeld+64 { // tuples released by request stay queued: drop the stale ones
		live := t.queue[:0]
		for _, g := range t.queue {
			if len(t.held[g]) > 0 {
				live = append(live, g)
			}
		}
		t.queue = live
	}
	return dropped
}

// waiting is how many answers are held, tied to nothing.
func (t *tcpTies) waiting() int { return t.nHeld }

// tie notes the SYN of probe p seen as o.
func (t *tcpTies) tie(o capture.Observation, p tiedProbe) {
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
	f := k
	f.point = ""
	if !slices.Contains(e.flows, f) {
		e.flows = append(e.flows, f)
	}
	t.probes[p] = e
	t.tuples[k] = p
	t.flows[f] = p
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
	if p, ok := t.tuples[k]; ok {
		t.drop(p, k)
		return p, true
	}
	f := k
	f.point = ""
	p, ok := t.flows[f]
	if !ok {
		return tiedProbe{}, false
	}
	for _, x := range t.probes[p].tuples { // the SYN seen at this point, in another NAT state
		if x.point == o.Point {
			t.drop(p, x)
			break
		}
	}
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
	t.remove(p, e)
}

// retire forgets probe p, every SYN of which was answered, but keeps its
// flows for the last maxRetired such probes: another point's ring may
// still bring a SYN of it (a bridge's, seen translated) and then its
// answer (seen restored), which only the flow ties.
func (t *tcpTies) retire(p tiedProbe, e tieEntry) {
	delete(t.probes, p)
	t.compact()
	t.retired = append(t.retired, retiredFlows{p, e.flows})
	if len(t.retired) <= maxRetired {
		return
	}
	old := t.retired[0]
	t.retired[0] = retiredFlows{}
	t.retired = t.retired[1:]
	if e, live := t.probes[old.p]; live { // tied again since: its entry owns them now
		for _, f := range old.flows {
			if !slices.Contains(e.flows, f) {
				e.flows = append(e.flows, f)
			}
		}
		t.probes[old.p] = e
		return
	}
	for _, f := range old.flows {
		if t.flows[f] == old.p {
			delete(t.flows, f)
		}
	}
}

// remove forgets probe p, whose tuples are gone, and its flows.
func (t *tcpTies) remove(p tiedProbe, e tieEntry) {
	for _, f := range e.flows {
		if t.flows[f] == p {
			delete(t.flows, f)
		}
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
		t.retire(p, e)
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
