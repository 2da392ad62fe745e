package lab

import (
	"context"
	"errors"
	"fmt"
)

// runState is what a Lab holds beyond its namespaces.
type runState struct {
	borrowed bool            // from Open: Close releases handles, removes nothing
	line     *lineRun        // the delay line running in this process, if any
	backends *backendServers // the backends' TCP servers running in this process, if any
	runDir   bool            // this lab created RunDir: Close stops its processes and removes it
}

// lineRun is a delay line running in this process, owned by a Lab.
type lineRun struct {
	line   *DelayLine
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's error, once done is closed
}

// forwardLoss reports whether f drops packets in node 1's FORWARD chain.
func (f Faults) forwardLoss() bool { return f.ForwardRequestLoss > 0 || f.ForwardReplyLoss > 0 }

// podLoss reports whether f drops packets in node 1's pod.
func (f Faults) podLoss() bool { return f.PodRequestLoss > 0 || f.PodReplyLoss > 0 }

// SetFaults replaces the lab's faults with f, on a standing lab: it
// flushes node 1's FORWARD chains, iptables' and ip6tables' (rules loaded
// by BloatForward go too), and its pod's OUTPUT and INPUT chains,
// deleting the loss chains, puts the wire between the nodes or takes it
// out as f needs, loads f's FORWARD rules and gives the delay line
// f.Network. A delay line running in this process is retuned in place,
// so a change of faults during a run loses no frame; one in a background
// process (Lab.WireCommand) is stopped and started again, and the frames
// it held or that came meanwhile are lost. SetFaults(ctx, Faults{})
// returns the lab to how Up builds it without faults. It needs iptables
// in PATH. When it fails, the lab may have part of f and Faults is zero:
// call it again, with f or with Faults{}.
func (l *Lab) SetFaults(ctx context.Context, f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("set faults of lab %s: %w", l.Name, err)
	}
	if l.run.line == nil || !f.needsWire() { // else applyFaults retunes it
		if err := l.stopWire(); err != nil {
			return fmt.Errorf("set faults of lab %s: %w", l.Name, err)
		}
	}
	l.Faults = Faults{}
	if f.needsWire() != (l.Wire != nil) {
		if err := l.rewire(ctx, f.needsWire()); err != nil {
			return fmt.Errorf("set faults of lab %s: %w", l.Name, err)
		}
	}
	if err := l.ClearForward(ctx, 1); err != nil {
		return fmt.Errorf("set faults of lab %s: %w", l.Name, err)
	}
	pod := l.Nodes[0].Pod
	if err := l.restore(ctx, pod.NSPath, pod.Name, []byte(clearPodRules)); err != nil {
		return fmt.Errorf("set faults of lab %s: clear pod loss rules: %w", l.Name, err)
	}
	if err := l.applyFaults(ctx, f); err != nil {
		return fmt.Errorf("set faults of lab %s: %w", l.Name, err)
	}
	return nil
}

// applyFaults loads f's FORWARD rules into node 1 and its pod rules into
// node 1's pod, and gives the wire, if the lab has one, f.Network: the
// delay line running in this process is retuned, else one is started.
// The wire must already be as f needs it.
func (l *Lab) applyFaults(ctx context.Context, f Faults) error {
	if f.forwardLoss() || f.ForwardRules > 0 || f.DenyICMP {
		if err := l.loadFaultRules(ctx, f); err != nil {
			return err
		}
	}
	if f.podLoss() {
		if err := l.loadPodRules(ctx, f); err != nil {
			return err
		}
	}
	var err error
	switch {
	case l.run.line != nil:
		err = l.run.line.line.SetNetwork(f.Network)
	case l.Wire != nil:
		err = l.startWire(f.Network)
	}
	if err != nil {
		return err
	}
	l.Faults = f
	return nil
}

// loadFaultRules appends f's loss rules and bloat rules to node 1's
// FORWARD chain with one iptables-restore --noflush.
func (l *Lab) loadFaultRules(ctx context.Context, f Faults) error {
	n := l.Nodes[0]
	if err := l.restore(ctx, n.NSPath, n.Name, faultRules(f, l.Layout)); err != nil {
		return fmt.Errorf("load fault rules: %w", err)
	}
	if f.DenyICMP {
		if err := l.restore6(ctx, n.NSPath, n.Name, denyICMP6Rules(l.Layout)); err != nil {
			return fmt.Errorf("load fault rules: %w", err)
		}
	}
	return nil
}

// loadPodRules appends f's pod loss rules to the OUTPUT and INPUT chains
// of node 1's pod.
func (l *Lab) loadPodRules(ctx context.Context, f Faults) error {
	p := l.Nodes[0].Pod
	if err := l.restore(ctx, p.NSPath, p.Name, podRules(f)); err != nil {
		return fmt.Errorf("load pod loss rules: %w", err)
	}
	return nil
}

// startWire starts the delay line with n: in a background process when
// l.WireCommand is set, else on goroutines of this process until Close.
func (l *Lab) startWire(n Network) error {
	if l.WireCommand != nil {
		return spawnWire(l.Name, l.WireCommand(l.Name, n))
	}
	d, err := OpenDelayLine(l, n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &lineRun{line: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		run.err = d.Run(ctx)
		close(run.done)
	}()
	l.run.line = run
	return nil
}

// stopWire stops the lab's delay line, in this process or in the
// background process; a borrowed lab leaves another process's line alone
// only in Close, never here.
func (l *Lab) stopWire() error {
	var errs []error
	if run := l.run.line; run != nil {
		run.cancel()
		<-run.done
		errs = append(errs, run.err, run.line.Close())
		l.run.line = nil
	}
	if _, err := stopWireProcess(l.Name); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop delay line: %w", err)
	}
	return nil
}

// WireStats returns what the delay line running in this process did
// since the faults were last set, and false when none runs here (no
// wire, or a background process).
func (l *Lab) WireStats() (WireStats, bool) {
	if l.run.line == nil {
		return WireStats{}, false
	}
	return l.run.line.line.Stats(), true
}
