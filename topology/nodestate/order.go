package nodestate

import (
	"cmp"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
)

// The orders of the JSON files' lists. Each compares what identifies an
// entry first and breaks any tie on the entry's whole encoding, so that
// the same state gives the same bytes whatever order the kernel dumped it
// in.

func sortAddresses(as []Address) {
	slices.SortFunc(as, func(a, b Address) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Family, b.Family), compareAddr(a.Address, b.Address), tie(a, b))
	})
}

func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Table, b.Table), compareAddr(a.Dst, b.Dst),
			cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Type, b.Type), cmp.Compare(devIndex(a.Dev), devIndex(b.Dev)),
			compareAddr(a.Gateway, b.Gateway), tie(a, b))
	})
}

func sortRules(rs []Rule) {
	slices.SortFunc(rs, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Priority, b.Priority), tie(a, b))
	})
}

func sortNeighbours(ns []Neighbour) {
	slices.SortFunc(ns, func(a, b Neighbour) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Family, b.Family), compareAddr(a.IP, b.IP), tie(a, b))
	})
}

func sortFDB(es []FDBEntry) {
	slices.SortFunc(es, func(a, b FDBEntry) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.MAC, b.MAC), cmp.Compare(a.VLAN, b.VLAN),
			compareAddr(a.Dst, b.Dst), tie(a, b))
	})
}

func sortFlows(fs []Flow) {
	slices.SortFunc(fs, func(a, b Flow) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), compareAddr(a.Original.Src, b.Original.Src),
			compareAddr(a.Original.Dst, b.Original.Dst), compareAddr(a.Reply.Src, b.Reply.Src), tie(a, b))
	})
}

// tie orders two entries equal on every key by their encodings.
func tie[T any](a, b T) int {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return strings.Compare(string(ja), string(jb))
}

func devIndex(r *LinkRef) int {
	if r == nil {
		return 0
	}
	return r.Index
}

// compareAddr orders addresses and prefixes given as text by value
// (10.0.0.2 before 10.0.0.10), a shorter prefix of the same address
// first, "default" before all; text that is neither sorts first, as
// text.
func compareAddr(a, b string) int {
	pa, oka := addrKey(a)
	pb, okb := addrKey(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	return cmp.Or(pa.Addr().Compare(pb.Addr()), cmp.Compare(pa.Bits(), pb.Bits()))
}

// addrKey parses "default", a prefix or an address, for compareAddr.
func addrKey(s string) (netip.Prefix, bool) {
	if s == "default" {
		return netip.Prefix{}, true // its invalid address sorts first
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}
