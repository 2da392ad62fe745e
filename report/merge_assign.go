package report

import "slices"

// probePair is one probe of the source's run and what its target node saw
// of it (nil: nothing).
type probePair struct {
	a, b *ProbeStamp
}

// assignment is where assign put the run's probes: the pairs of each
// listener, the disagreements of each, and those of no listener (a
// probe whose backend has no listen file), which the first report holds.
type assignment struct {
	pairs      [][]probePair
	ds         [][]Disagreement
	noListener []Disagreement
}

// assign gives each probe of run to the listener whose pod it reached.
// Listeners of pods on one node (a Service's two backends there) share
// that node's first points, so each of their files holds every probe
// that crossed them: the probe is the one whose file saw it at its pod,
// or, seen at none (lost on the node before the pods' paths part), the
// one its destination at the source's uplink (the backend, after the
// DNAT) names. A probe no file holds goes to the listener that
// destination names, or with one listener to that one unless probes
// that reached its pod show the destination is another backend's. A probe two files saw at
// their pods, or held by files of two nodes, is a disagreement.
func assign(run StampRun, listeners []*Stamps, held []map[uint32]*ProbeStamp) assignment {
	as := assignment{pairs: make([][]probePair, len(listeners)), ds: make([][]Disagreement, len(listeners))}
	dsts := backendDsts(run, listeners, held)
	reached := make([]bool, len(listeners)) // some probe reached the listener's pod
	for i := range listeners {
		for _, p := range held[i] {
			if reachedPod(p) {
				reached[i] = true
				break
			}
		}
	}
	names := func(i int, dst string) bool { return dst != "" && slices.Contains(dsts[i], dst) }
	for k := range run.Probes {
		a := &run.Probes[k]
		var in, atPod []int
		for i := range listeners {
			if p := held[i][a.Seq]; p != nil {
				in = append(in, i)
				if reachedPod(p) {
					atPod = append(atPod, i)
				}
			}
		}
		pick := -1
		switch {
		case len(atPod) == 1:
			pick = atPod[0]
		case len(atPod) > 1:
			pick = atPod[0]
			if j := slices.IndexFunc(atPod, func(i int) bool { return names(i, a.Dst) }); j >= 0 {
				pick = atPod[j]
			}
		case len(in) > 0 && a.Dst == "":
			pick = in[0]
		case len(in) > 0:
			// Seen on the node but at no pod: the holder its destination
			// names, else the listener it names; held by another
			// backend's listener only, none.
			if j := slices.IndexFunc(in, func(i int) bool { return names(i, a.Dst) }); j >= 0 {
				pick = in[j]
				break
			}
			fallthrough
		default:
			for i := range listeners {
				if names(i, a.Dst) {
					pick = i
					break
				}
			}
			if pick < 0 && len(listeners) == 1 && (a.Dst == "" || !reached[0]) {
				// Nothing says it went elsewhere: lost before the
				// source's uplink, or no probe reached the pod (all lost
				// on the node, behind a DNAT there) to say which
				// destinations are the pod's.
				pick = 0
			}
		}
		if pick < 0 {
			as.noListener = addDisagreement(as.noListener, DisagreeNoListener, a.Seq)
			continue
		}
		if len(atPod) > 1 || (len(in) > 1 && !oneNode(listeners, in)) {
			as.ds[pick] = addDisagreement(as.ds[pick], DisagreeTwoTargets, a.Seq)
		}
		as.pairs[pick] = append(as.pairs[pick], probePair{a: a, b: held[pick][a.Seq]})
	}
	return as
}

// reachedPod reports whether a listener saw probe p at its pod: its last
// request step or its first reply step.
func reachedPod(p *ProbeStamp) bool {
	n := len(p.At) / 2
	return n > 0 && (p.At[n-1] != 0 || p.At[n] != 0)
}

// backendDsts are, per listener, the addresses that name its pod as a
// probe's destination at the source's uplink: the pod's own, and those of
// the probes its file saw at the pod (a node's address, when the target
// node does the DNAT).
func backendDsts(run StampRun, listeners []*Stamps, held []map[uint32]*ProbeStamp) [][]string {
	dsts := make([][]string, len(listeners))
	for i, l := range listeners {
		if l.Path != nil && l.Path.Source.Addr.IsValid() {
			dsts[i] = append(dsts[i], l.Path.Source.Addr.String())
		}
	}
	for k := range run.Probes {
		a := &run.Probes[k]
		if a.Dst == "" {
			continue
		}
		for i := range listeners {
			if p := held[i][a.Seq]; p != nil && reachedPod(p) && !slices.Contains(dsts[i], a.Dst) {
				dsts[i] = append(dsts[i], a.Dst)
			}
		}
	}
	return dsts
}

// oneNode reports whether the listeners in are all on one node: the same
// host name and the same uplink (interface and netns).
func oneNode(listeners []*Stamps, in []int) bool {
	key := func(l *Stamps) string {
		k := l.Node
		if len(l.Steps) > 0 {
			if pt, ok := l.Path.Point(l.Steps[0].Point); ok {
				k += "|" + pt.Interface + "@" + pt.NetNS
			}
		}
		return k
	}
	first := key(listeners[in[0]])
	for _, i := range in[1:] {
		if key(listeners[i]) != first {
			return false
		}
	}
	return true
}
