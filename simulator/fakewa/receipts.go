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
	d := c.loggedInDevice()
	if d == nil {
		return
	}
	s := c.s
	read := func() {
		if sched.ReadAfter >= 0 {
			s.sendReceipt(d, acked, id, to, receiptRead)
		}
	}
	if sched.DeliveredAfter < 0 {
		if sched.ReadAfter >= 0 {
			time.AfterFunc(sched.ReadAfter, read)
		}
		return
	}
	time.AfterFunc(sched.DeliveredAfter, func() {
		s.sendReceipt(d, acked, id, to, receiptDelivery)
		if sched.ReadAfter >= 0 {
			time.AfterFunc(max(0, sched.ReadAfter-sched.DeliveredAfter), read)
		}
	})
}

// The types of the receipts the recipients' phones send for a device's messages: a delivery
// receipt carries no type attribute.
const (
	receiptDelivery = ""
	receiptRead     = "read"
)

// heldReceipt is a receipt for a message the device sent that the device has not acknowledged
// yet (its <ack class="receipt">): sent and waiting for the ack, or held while the device is
// offline. WhatsApp keeps such a receipt in the device's offline queue and delivers it again at
// each login until the device acks it, as it does messages (an old read receipt comes again at
// login with a retry count, and the client's <ack to id type="read"> ends it); so a gateway
// that did not ack a receipt (its handler refused it, or it stopped first) gets it again.
type heldReceipt struct {
	id    string    // the message's id
	from  types.JID // the recipient that sent it
	typ   string    // receiptDelivery or receiptRead
	t     time.Time // when the recipient sent it
	acked Event     // the server's ack of the message: the receipt's events start from it
	tries int
}

// node is the <receipt> stanza of r.
func (r *heldReceipt) node() waBinary.Node {
	attrs := waBinary.Attrs{"id": r.id, "from": r.from, "t": unixString(r.t)}
	if r.typ != receiptDelivery {
		attrs["type"] = r.typ
	}
	return waBinary.Node{Tag: "receipt", Attrs: attrs}
}

// detail names r's type in the event log: delivery or read.
func (r *heldReceipt) detail() string {
	if r.typ == receiptDelivery {
		return "delivery"
	}
	return r.typ
}

// sendReceipt has the recipient to send the device a receipt of type typ for its message id:
// it is queued on the device until the device acks it, and delivered now when the device is
// online, else at its next login. A device that logged out gets none. At MaxHeldMessages
// receipts held for a device the oldest is dropped (EventReceiptDropped).
func (s *Server) sendReceipt(d *device, acked Event, id string, to types.JID, typ string) {
	if s.ctx.Err() != nil {
		return
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	s.mu.Lock()
	loggedOut, c := d.loggedOut, d.conn
	s.mu.Unlock()
	if loggedOut {
		return
	}
	r := &heldReceipt{id: id, from: to.ToNonAD(), typ: typ, t: time.Now(), acked: acked}
	if len(d.receiptsOut) >= s.cfg.MaxHeldMessages {
		dropped := d.receiptsOut[0]
		d.receiptsOut = d.receiptsOut[1:]
		s.events.add(s.receiptEvent(EventReceiptDropped, nil, dropped))
	}
	d.receiptsOut = append(d.receiptsOut, r)
	if c == nil || !s.deliverReceipt(c, r) {
		s.events.add(s.receiptEvent(EventReceiptHeld, nil, r))
	}
}

// deliverReceipt writes one held receipt to the device's connection and records it; false when
// the write failed (it stays held for the next login). Call with the device's sendMu held.
func (s *Server) deliverReceipt(c *conn, r *heldReceipt) bool {
	if c.ctx.Err() != nil || c.sendNode(r.node()) != nil {
		return false
	}
	r.tries++
	s.events.add(s.receiptEvent(EventReceiptSent, c, r))
	return true
}

// receiptEvent is the event of kind about r, on connection c (nil for none).
func (s *Server) receiptEvent(kind EventKind, c *conn, r *heldReceipt) Event {
	e := r.acked
	e.Kind, e.Time, e.Seq, e.Detail, e.Attempt, e.Conn = kind, time.Time{}, 0, r.detail(), r.tries, 0
	if c != nil {
		e.Conn = c.id
	}
	return e
}

// receiptAcked handles the device's <ack class="receipt">: the receipt it names (message id,
// type, recipient) is no longer held.
func (c *conn) receiptAcked(n *waBinary.Node) {
	d := c.loggedInDevice()
	if d == nil {
		return
	}
	id, typ := attrString(n, "id"), attrString(n, "type")
	from, hasFrom := attrJID(n, "to")
	d.sendMu.Lock()
	var acked *heldReceipt
	for i, r := range d.receiptsOut {
		if r.id == id && r.typ == typ && (!hasFrom || from.ToNonAD() == r.from) {
			acked = r
			d.receiptsOut = append(d.receiptsOut[:i], d.receiptsOut[i+1:]...)
			break
		}
	}
	d.sendMu.Unlock()
	if acked != nil {
		c.s.events.add(c.s.receiptEvent(EventReceiptAcked, c, acked))
	}
}
