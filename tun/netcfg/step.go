package netcfg

import (
	"context"
	"errors"
)

// Step is one change made to the host and the way to take it back.
type Step struct {
	// Did is the "[#]" line printed when the step was done.
	Did string
	// undoLine is printed when the step is undone; "" prints nothing.
	undoLine string
	undo     func(ctx context.Context) error
}

// Undo is the record of an Up: the steps done, newest last. Running it takes
// them back in reverse order. The zero value undoes nothing.
type Undo struct {
	r     *Runner
	steps []Step
}

// Steps returns the steps done, oldest first.
func (u *Undo) Steps() []Step {
	if u == nil {
		return nil
	}
	return append([]Step(nil), u.steps...)
}

// Run undoes every step, newest first. It keeps going past failures, so that
// as much as possible is cleaned up, and returns them all joined.
func (u *Undo) Run(ctx context.Context) error {
	if u == nil {
		return nil
	}
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if s.undo == nil {
			continue
		}
		if s.undoLine != "" {
			u.r.printf("[#] %s", s.undoLine)
		}
		if err := s.undo(ctx); err != nil {
			errs = append(errs, stepErr(s.undoLine, err))
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}

func (u *Undo) push(did, undoLine string, undo func(ctx context.Context) error) {
	u.steps = append(u.steps, Step{Did: did, undoLine: undoLine, undo: undo})
}
