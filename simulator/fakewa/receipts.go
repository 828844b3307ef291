package fakewa

import (
	"fmt"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ReceiptSchedule says when the recipients of one device's messages acknowledge them, measured
// from the server's ack: the delivery receipt after DeliveredAfter, the read receipt after
// ReadAfter (never before the delivery receipt). A negative delay sends no such receipt.
type ReceiptSchedule struct {
	DeliveredAfter time.Duration
	ReadAfter      time.Duration
}

// ReceiptScheduleRequest is the body of POST /devices/{jid}/receipts: both delays as Go durations
// ("1.5s") or "never"; {"reset": true} returns the device to the server's Receipts policy.
type ReceiptScheduleRequest struct {
	DeliveredAfter string `json:"delivered_after"`
	ReadAfter      string `json:"read_after"`
	Reset          bool   `json:"reset,omitempty"`
}

// parse turns the request into a schedule (nil for a reset).
func (r ReceiptScheduleRequest) parse() (*ReceiptSchedule, error) {
	if r.Reset {
		return nil, nil
	}
	parse := func(field, v string) (time.Duration, error) {
		if v == "never" {
			return -1, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%w: %s must be a duration like 2s, or never", ErrBadMessage, field)
		}
		return d, nil
	}
	delivered, err := parse("delivered_after", r.DeliveredAfter)
	if err != nil {
		return nil, err
	}
	read, err := parse("read_after", r.ReadAfter)
	if err != nil {
		return nil, err
	}
	return &ReceiptSchedule{DeliveredAfter: delivered, ReadAfter: read}, nil
}

// SetReceiptSchedule sets when the recipients of the device's messages send their receipts; nil
// returns it to the server's Receipts policy.
func (s *Server) SetReceiptSchedule(jid types.JID, sched *ReceiptSchedule) error {
	return s.updateDevice(jid, func(d *device) { d.receipts = sched })
}

// receiptSchedule returns the device's own schedule, if it has one.
func (s *Server) receiptSchedule(d *device) *ReceiptSchedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return d.receipts
}

// scheduleReceipts sends the receipts of an acked message on the device's schedule.
func (c *conn) scheduleReceipts(acked Event, id string, to types.JID, sched ReceiptSchedule) {
	send := func(kind string) {
		if c.ctx.Err() != nil {
			return
		}
		attrs := waBinary.Attrs{"id": id, "from": to.ToNonAD(), "t": unixString(time.Now())}
		detail := "delivery"
		if kind != "" {
			attrs["type"], detail = kind, kind
		}
		if c.sendNode(waBinary.Node{Tag: "receipt", Attrs: attrs}) != nil {
			return
		}
		e := acked
		e.Kind, e.Time, e.Seq, e.Detail = EventReceiptSent, time.Time{}, 0, detail
		c.s.events.add(e)
	}
	read := func() {
		if sched.ReadAfter >= 0 {
			send("read")
		}
	}
	if sched.DeliveredAfter < 0 {
		if sched.ReadAfter >= 0 {
			time.AfterFunc(sched.ReadAfter, read)
		}
		return
	}
	time.AfterFunc(sched.DeliveredAfter, func() {
		send("")
		if sched.ReadAfter >= 0 {
			time.AfterFunc(max(0, sched.ReadAfter-sched.DeliveredAfter), read)
		}
	})
}
