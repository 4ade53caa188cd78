package netcfg

import (
	"context"
	"errors"
	"fmt"
)

// Up configures the host for s in wg-quick's order: PreUp hooks, the device
// (dev.Create), addresses, MTU and link up, DNS, routes (with the fwmark
// rules of a full tunnel), PostUp hooks. If a step fails, everything done so
// far is undone and the error names the step. On success the returned Undo
// takes it all back; Down does the same without it, for another process.
func (r *Runner) Up(ctx context.Context, s Settings, dev Device) (*Undo, error) {
	table, err := ParseTable(s.Table, r.rtTables())
	if err != nil {
		return nil, r.tableErr(err)
	}
	for _, a := range s.Addresses {
		if a.Addr().Is4In6() {
			// The netlink package would add it as IPv4 with a bad length.
			return nil, fmt.Errorf("address %s: IPv4-mapped IPv6 addresses are not supported; write %s/%d",
				a, a.Addr().Unmap(), max(a.Bits()-96, 0))
		}
	}
	u := &Undo{r: r}
	st := &upState{s: s, table: table, dev: dev, owned: dev.Create != nil && dev.Delete != nil}
	if err := r.upSteps(ctx, u, st); err != nil {
		if uerr := u.Run(context.WithoutCancel(ctx)); uerr != nil {
			r.log().Warn("undoing a failed up left something behind", "interface", s.Interface, "err", uerr)
			return nil, errors.Join(err, fmt.Errorf("undo: %w", uerr))
		}
		return nil, err
	}
	return u, nil
}

func (r *Runner) upSteps(ctx context.Context, u *Undo, st *upState) error {
	s := st.s
	// Between steps a cancelled ctx (SIGINT or SIGTERM to up) stops the
	// rest, and Up undoes what was done, as wg-quick's trap runs del_if.
	steps := []func() error{
		func() error { return r.runHooks(ctx, "PreUp", s.Interface, s.PreUp) },
		func() error { return r.createLink(ctx, u, st) },
		func() error {
			for _, a := range s.Addresses {
				if err := r.addAddress(u, st, a); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { return r.setMTUUp(u, st) },
		func() error { return r.setDNS(ctx, u, s) },
		func() error { return r.addRoutes(ctx, u, st) },
		func() error { return r.runHooks(ctx, "PostUp", s.Interface, s.PostUp) },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("up %s interrupted: %w", s.Interface, err)
		}
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// createLink calls dev.Create when given and finds the link either way.
func (r *Runner) createLink(ctx context.Context, u *Undo, st *upState) error {
	iface := st.s.Interface
	if st.dev.Create != nil {
		if err := st.dev.Create(ctx); err != nil {
			return stepErr("create "+iface, err)
		}
		if del := st.dev.Delete; del != nil {
			u.push("create "+iface, "ip link delete dev "+iface, func(context.Context) error { return del() })
		}
	}
	link, err := r.handle().LinkByName(iface)
	if err != nil {
		return stepErr("find "+iface, fmt.Errorf("%w: %v", ErrNoLink, err))
	}
	st.link = link
	return nil
}

func (r *Runner) rtTables() []string {
	if r.RTTables != nil {
		return r.RTTables
	}
	return defaultRTTables()
}
