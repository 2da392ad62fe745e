package probe

import "sync/atomic"

// Progress is a run's running totals, for a live progress line: the run
// updates them as it goes (Config.Progress), and any goroutine may read
// them meanwhile. The zero value is ready to use; one Progress may be
// shared by several runs, which then add up.
type Progress struct {
	sent, answered, unanswered atomic.Int64
}

// Sent returns how many probes were sent so far.
func (p *Progress) Sent() int64 { return p.sent.Load() }

// Answered returns how many probes were answered in time so far.
func (p *Progress) Answered() int64 { return p.answered.Load() }

// Unanswered returns how many probes the run gave up on so far: no reply
// in time (lost, or late), or refused by the local stack.
func (p *Progress) Unanswered() int64 { return p.unanswered.Load() }

// The run's hooks; all no-ops on a nil Progress.
func (p *Progress) addSent() {
	if p != nil {
		p.sent.Add(1)
	}
}

func (p *Progress) addAnswered() {
	if p != nil {
		p.answered.Add(1)
	}
}

func (p *Progress) addUnanswered() {
	if p != nil {
		p.unanswered.Add(1)
	}
}
