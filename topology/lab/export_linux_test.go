package lab

import "context"

// UpFailingAt is Up with fail called before every step; a non-nil error
// from fail aborts Up at that step, as a real failure there would.
func UpFailingAt(ctx context.Context, cfg Config, fail func(step string) error) (*Lab, error) {
	return up(ctx, cfg, fail)
}
