package cost

import "context"

// Write implements user.Phone: a customer's message, counted as the world's load.
func (w worldPhone) Write(ctx context.Context, jid, from, text, quote string) (id string, err error) {
	inWorld(ctx, func(ctx context.Context) { id, err = w.p.Write(ctx, jid, from, text, quote) })
	return id, err
}
