package probe

import (
	"context"
	"testing"
)

func TestProgressCountsTheRun(t *testing.T) {
	conn := newEchoConn()
	conn.drop = func(seq int) bool { return seq%4 == 0 } // 0, 4, 8: lost
	var p Progress
	cfg := testConfig(10)
	cfg.Progress = &p
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent() != int64(res.Sent) || p.Sent() != 10 {
		t.Errorf("Progress.Sent() = %d, want the run's %d (10)", p.Sent(), res.Sent)
	}
	if p.Answered() != int64(res.Answered) || p.Answered() != 7 {
		t.Errorf("Progress.Answered() = %d, want the run's %d (7)", p.Answered(), res.Answered)
	}
	if p.Unanswered() != 3 {
		t.Errorf("Progress.Unanswered() = %d, want 3", p.Unanswered())
	}
}

func TestNilProgressIsFine(t *testing.T) {
	var p *Progress
	p.addSent()
	p.addAnswered()
	p.addUnanswered()
}
