// Package nodestate takes the network state of a node and of a pod at one
// moment and returns it as files, for the evidence bundle (trace
// --bundle): what support asks for next to a hop breakdown.
//
// From each network namespace it reads, through netlink, the links,
// addresses, routes of every table and rules, and, on the path's devices
// only, the neighbour and bridge FDB entries; through /proc/sys the
// sysctls that change how a path behaves; and it runs the host's
// iptables-save, ip6tables-save (and their -legacy variants) and nft list
// ruleset inside that namespace when the host has them. From the node it
// also takes the CNI configuration files under /etc/cni/net.d and, at the
// end of a run, the conntrack entries of the probes' flows (Conntrack).
//
// Everything is deterministic JSON (sorted, indented) but the programs'
// output, which is kept as they printed it. Nothing collected is a secret:
// no environment variable, token or socket is read, the programs run with
// an environment of PATH alone, and only CNI configuration files (.conf,
// .conflist, .json, what libcni reads) are copied, never the kubeconfig
// files some plugins keep beside them. A CNI configuration can still hold
// a credential in some rare plugin: docs/bundle.md says so.
//
// What cannot be collected is never an error that loses the rest: a Gap
// records it (an absent program, an unreadable directory, a netlink dump
// refused for want of a capability, as a *topology.CapabilityError) and
// the snapshot goes on.
package nodestate

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

// File is one file of a snapshot.
type File struct {
	// Name is the file's path inside the snapshot, slash-separated:
	// node/links.json, pod/routes.json, cni/net.d/10-flannel.conflist.
	Name string
	// About says in one line what the file is, for a README.
	About string
	Data  []byte
}

// Gap is something a snapshot did not collect, and why.
type Gap struct {
	// Name is the file (node/nft-ruleset.txt) or the group of files
	// (node/, cni/net.d/) that is missing or incomplete.
	Name string
	// Why says why in a few words when nothing failed: "nft not found
	// under /host (looked in ...)", "a symbolic link: not followed".
	Why string
	// Err is what failed, when something did (a netlink dump, a read, a
	// program's exit status); a missing capability is a
	// *topology.CapabilityError.
	Err error
}

// String renders the gap on one line: "NAME: WHY" or "NAME: ERR".
func (g Gap) String() string {
	if g.Err != nil {
		if g.Why != "" {
			return fmt.Sprintf("%s: %s: %v", g.Name, g.Why, g.Err)
		}
		return fmt.Sprintf("%s: %v", g.Name, g.Err)
	}
	return g.Name + ": " + g.Why
}

// Snapshot is what Take collected: its files in a fixed order (a
// namespace's netlink state, its sysctls, its rulesets; the node before
// the pod; then the CNI configuration), and what it could not collect.
type Snapshot struct {
	Files []File
	Gaps  []Gap
}

// Options says where the node's files are and what the path is.
type Options struct {
	// HostRoot is where the node's / is: /host in a kubectl debug node
	// pod; "" or "/" when cnitrace runs on the node itself. Programs and
	// the CNI configuration are looked for under it, and programs run
	// chrooted to it.
	HostRoot string
	// Path is the discovered path: its points' devices are the ones whose
	// neighbour and FDB entries and per-device sysctls are taken.
	Path *topology.Path
	// ProgramTimeout bounds each program run; zero means
	// DefaultProgramTimeout.
	ProgramTimeout time.Duration
}

// DefaultProgramTimeout bounds one run of iptables-save or nft: on a node
// with tens of thousands of kube-proxy rules they take about a second.
const DefaultProgramTimeout = 10 * time.Second

// Limits on what is copied, so that a snapshot stays small in memory and
// in the bundle however large the node's tables.
const (
	MaxProgramOutput = 16 << 20 // a program's stdout; more is cut, and said so
	MaxCNIFile       = 1 << 20  // one CNI configuration file; a larger one is skipped
	MaxCNIFiles      = 64       // CNI configuration files; later ones are skipped
	maxCNITotal      = 16 << 20 // all CNI configuration files together
	maxProgramStderr = 64 << 10 // a program's stderr
	maxSysctlValue   = 4 << 10  // one sysctl's value
)

// add appends a file.
func (s *Snapshot) add(name, about string, data []byte) {
	s.Files = append(s.Files, File{Name: name, About: about, Data: data})
}

// addJSON appends v as an indented JSON file; a value that cannot be
// encoded (never, for the types of this package) is a gap.
func (s *Snapshot) addJSON(name, about string, v any) {
	b, err := encodeJSON(v)
	if err != nil {
		s.gap(name, "", err)
		return
	}
	s.add(name, about, b)
}

// gap records what was not collected.
func (s *Snapshot) gap(name, why string, err error) {
	s.Gaps = append(s.Gaps, Gap{Name: name, Why: why, Err: err})
}

// encodeJSON is the one encoding of every JSON file: two-space indents
// and a final newline. Its determinism comes from the values: structs in
// field order, slices sorted by their producers, maps by encoding/json.
func encodeJSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return append(b, '\n'), nil
}
