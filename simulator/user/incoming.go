package user

import (
	"context"
	"fmt"
	"time"

	"wagate/simulator/truth"
)

// incoming is the user's customer writing to the session: messages at a Poisson rate from one
// fakewa phone (one chat), each a reply to the previous one with probability replies. The
// messages fakewa accepted are recorded in the order written, for the ground truth.
type incoming struct {
	u       *user
	perMin  float64
	replies float64
	from    string
	timer   *time.Timer
	last    string
	written int
}

// customerPhone is the number of the customer writing to the user's session: one per session.
func customerPhone(u *user) string { return CustomerPhone(u.phone) }

// CustomerPhone is the number of the customer writing to the session of the account whose phone
// is phone (k6/x/wagate's customers use it too).
func CustomerPhone(phone string) string { return "55" + phone[1:] }

func newIncoming(u *user, perMin, replies float64) *incoming {
	in := &incoming{u: u, perMin: perMin, replies: replies, from: customerPhone(u)}
	in.timer = time.NewTimer(in.next())
	return in
}

// next draws the wait before the next message; never when the rate is 0.
func (in *incoming) next() time.Duration {
	if in.perMin <= 0 {
		return time.Duration(1<<62 - 1)
	}
	return time.Duration(in.u.rng.ExpFloat64() / in.perMin * float64(time.Minute))
}

// write sends the next message and arms the timer again.
func (in *incoming) write(ctx context.Context) {
	defer in.timer.Reset(in.next())
	e := in.u.sc.Env
	quote := ""
	if in.last != "" && in.u.rng.Float64() < in.replies {
		quote = in.last
	}
	in.written++
	at := time.Now()
	id, err := e.Phone.Write(ctx, in.u.jid, in.from, fmt.Sprintf("customer message %d to %s", in.written, in.u.id), quote)
	if err != nil {
		if ctx.Err() == nil {
			e.Reg.Add("message_write_failures", 1, in.u.tags)
		}
		return
	}
	in.last = id
	if e.Messages != nil {
		e.Messages.Wrote(truth.Written{SessionID: in.u.id, Chat: in.from + "@s.whatsapp.net", MessageID: id, At: at, Tags: in.u.tags})
	}
}
