package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cnitrace/cnitrace/topology"
)

// Up builds a lab: two nodes, each with a pod on a bridge, joined by an
// uplink veth pair (or through the wire namespace, when cfg.Faults has a
// network fault) and a flannel-style VXLAN overlay, then sets up
// cfg.Faults. When ctx ends or any step fails, whatever was built is
// removed, a delay line started is stopped, before Up returns the error.
// The caller must Close the lab (or Down it by name) to remove it.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	return up(ctx, cfg, nil)
}

// step is one stage of building a lab; fail injects a failure before a
// step, so tests can prove every stage cleans up.
type step struct {
	name string
	run  func() error
}

func up(ctx context.Context, cfg Config, fail func(step string) error) (_ *Lab, err error) {
	name, err := resolveName(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.Layout.Validate(); err != nil {
		return nil, fmt.Errorf("build lab %s: %w", name, err)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("build lab %s: %w", name, err)
	}
	if err := cfg.ServiceMode.Validate(); err != nil {
		return nil, fmt.Errorf("build lab %s: %w", name, err)
	}
	if cfg.ServiceMode != "" && !cfg.Service {
		return nil, fmt.Errorf("build lab %s: service mode %s without a Service (set Config.Service)", name, cfg.ServiceMode)
	}
	l := &Lab{Name: name, Layout: cfg.Layout.orDefault(), WireCommand: cfg.WireCommand, BackendCommand: cfg.BackendCommand}
	backends, hairpin := cfg.Backends || cfg.Service, cfg.Service
	for i := 1; i <= nodeCount; i++ {
		l.Nodes = append(l.Nodes, newNode(name, i))
	}
	if cfg.Faults.needsWire() {
		l.Wire = newWire(name)
	}
	defer func() {
		if err == nil {
			return
		}
		if cerr := l.Close(); cerr != nil {
			err = fmt.Errorf("%w (and while removing the half-built lab: %v)", err, cerr)
		}
	}()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	steps := []step{
		{"mark the lab as ours", l.mark},
		{"create namespaces", l.createNamespaces},
		{"set up node 1", func() error { return l.setupNode(n1, hairpin) }},
		{"set up node 2", func() error { return l.setupNode(n2, hairpin) }},
		{"connect nodes", l.connectNodes},
		{"set up overlay on node 1", func() error { return l.setupOverlay(n1, n2) }},
		{"set up overlay on node 2", func() error { return l.setupOverlay(n2, n1) }},
		{"set up service", func() error { return ifSet(cfg.Service, func() error { return l.setupService(ctx, cfg.ServiceMode) }) }},
		{"set up external host", func() error { return ifSet(cfg.External, func() error { return l.setupExternal(ctx) }) }},
		{"wait for links", func() error { return l.waitLinksUp(ctx) }},
		{"start backends", func() error { return ifSet(backends, func() error { return l.startBackends(ctx) }) }},
		{"set up faults", func() error { return l.applyFaults(ctx, cfg.Faults) }},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("build lab %s: %w", name, err)
		}
		if fail != nil {
			if err := fail(s.name); err != nil {
				return nil, fmt.Errorf("build lab %s: %s: %w", name, s.name, err)
			}
		}
		if err := s.run(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// ifSet runs fn when set.
func ifSet(set bool, fn func() error) error {
	if !set {
		return nil
	}
	return fn()
}

// mark creates the lab's MarkerFile. One that exists already is another
// lab of the same name, or one whose Down never ran: Up refuses to build
// over it.
func (l *Lab) mark() error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("mark lab %s: %w", l.Name, err)
	}
	f, err := os.OpenFile(MarkerFile(l.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mark lab %s: %w (is lab %s already up? 'cnitrace-lab down %s' removes it)", l.Name, err, l.Name, l.Name)
	}
	if err != nil {
		return fmt.Errorf("mark lab %s: %w", l.Name, err)
	}
	l.marked = true
	_, werr := fmt.Fprintf(f, "cnitrace lab %s, layout %s, built by pid %d\n", l.Name, l.Layout, os.Getpid())
	return errors.Join(werr, f.Close())
}

// unmark removes the marker of the lab called name, and StateDir once it
// is empty. A missing marker is not an error.
func unmark(name string) error {
	if err := os.Remove(MarkerFile(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the marker of lab %s: %w", name, err)
	}
	os.Remove(StateDir) // only when empty: other labs' files keep it
	return nil
}

// createNamespaces creates and pins the lab's namespaces. Only those it
// created are recorded for removal: a namespace that already existed is
// someone else's.
func (l *Lab) createNamespaces() error {
	for _, n := range l.Nodes {
		var err error
		if n.NS, err = l.newNetNS(n.Name); err != nil {
			return err
		}
		for _, p := range n.pods() {
			if p.NS, err = l.newNetNS(p.Name); err != nil {
				return err
			}
		}
	}
	if l.Wire != nil {
		var err error
		if l.Wire.NS, err = l.newNetNS(l.Wire.Name); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) newNetNS(name string) (*topology.NetNS, error) {
	ns, err := NewNamedNetNS(NamedNetNSDir, name)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w (is lab %s already up?)", err, l.Name)
	}
	if err != nil {
		return nil, err
	}
	if !l.run.borrowed {
		l.created = append(l.created, name)
	}
	return ns, nil
}

// Close removes the lab: it stops its delay line (in this process, or the
// background one), closes every handle and unpins every namespace the lab
// created, which destroys the namespaces and all interfaces in them (the
// kernel finishes that asynchronously). It is safe to call more than once
// and on a half-built lab. On a lab from Open it only stops a delay line
// running in this process and closes the handles.
func (l *Lab) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	if run := l.run.line; run != nil {
		run.cancel()
		<-run.done
		errs = append(errs, run.line.Close()) // Run's error is moot now
		l.run.line = nil
	}
	l.run.backends.stop()
	l.run.backends = nil
	if !l.run.borrowed {
		if _, err := stopWireProcess(l.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if l.run.runDir {
		if _, err := stopBackends(l.Name); err != nil {
			errs = append(errs, err)
		} else {
			l.run.runDir = false
		}
	}
	if l.Wire != nil {
		errs = append(errs, closeNS(l.Wire.NS, l.Wire.Name))
	}
	if l.External != nil {
		errs = append(errs, closeNS(l.External.NS, l.External.Name))
	}
	for _, n := range l.Nodes {
		errs = append(errs, closeNS(n.NS, n.Name))
		for _, p := range n.pods() {
			if p != nil {
				errs = append(errs, closeNS(p.NS, p.Name))
			}
		}
	}
	var kept []string
	for i := len(l.created) - 1; i >= 0; i-- {
		if err := RemoveNamedNetNS(NamedNetNSDir, l.created[i]); err != nil {
			errs = append(errs, err)
			kept = append(kept, l.created[i])
		}
	}
	slices.Reverse(kept)
	l.created = kept
	if l.marked && len(kept) == 0 {
		errs = append(errs, unmark(l.Name))
		l.marked = false
	}
	return errors.Join(errs...)
}

func closeNS(ns *topology.NetNS, name string) error {
	if err := ns.Close(); err != nil {
		return fmt.Errorf("close handle of netns %s: %w", name, err)
	}
	return nil
}

// Down removes a lab left standing, possibly by another process: it stops
// the lab's background delay line (and checks it is gone), unpins every
// namespace under NamedNetNSDir whose name is exactly one of the lab's,
// and removes its marker. It returns an error wrapping ErrNoLab when none
// of these exists.
func Down(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	found, err := stopWireProcess(name)
	if err != nil {
		return fmt.Errorf("remove lab %s: %w", name, err)
	}
	ran, err := stopBackends(name)
	if err != nil {
		return fmt.Errorf("remove lab %s: %w", name, err)
	}
	found = found || ran
	var errs []error
	for _, ns := range nsNames(name) {
		if _, err := os.Lstat(filepath.Join(NamedNetNSDir, ns)); err != nil {
			continue
		}
		found = true
		errs = append(errs, RemoveNamedNetNS(NamedNetNSDir, ns))
	}
	if _, err := os.Lstat(MarkerFile(name)); err == nil {
		found = true
	}
	if !found {
		return fmt.Errorf("remove lab %s: %w (no marker %s, nothing named %s-* in %s)", name, ErrNoLab, MarkerFile(name), name, NamedNetNSDir)
	}
	if err := errors.Join(errs...); err != nil {
		return err // the marker stays, so List still shows what is left
	}
	return unmark(name)
}

// List returns the names of the labs this tool built that are standing,
// sorted: those with a marker in StateDir, whatever their name, and those
// with a background delay line's pid file or a RunDir (a failed rerun of
// lab up can leave one without namespaces, which still needs a Down).
func List() ([]string, error) {
	var names []string
	for _, suffix := range []string{".lab", ".wire.pid", ""} {
		found, err := listNames(StateDir, func(f string) (string, bool) {
			name, ok := strings.CutSuffix(f, suffix)
			if suffix == "" {
				fi, err := os.Lstat(filepath.Join(StateDir, f))
				ok = err == nil && fi.IsDir()
			}
			return name, ok && ValidateName(name) == nil
		})
		if err != nil {
			return nil, err
		}
		for _, n := range found {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// listNames returns the distinct lab names that labOf finds among the
// entries of dir; a missing dir holds none.
func listNames(dir string, labOf func(entry string) (string, bool)) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := labOf(e.Name()); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}
