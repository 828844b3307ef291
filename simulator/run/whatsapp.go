package run

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/laravel"
	"wagate/simulator/fakewa"
	"wagate/simulator/truth"
)

// waSide is fakewa as the simulator drives it: in-process (*fakewa.Server) or over its control
// API (*fakewa.ControlClient).
type waSide interface {
	Pair(ctx context.Context, qr, phone string) (types.JID, error)
	Drop(ctx context.Context, jid types.JID) error
	Replace(ctx context.Context, jid types.JID) error
	Logout(ctx context.Context, jid types.JID) error
	Restart(ctx context.Context) error
	// Unreachable starts an outage of d on the devices (none: every connection) and returns how
	// many connections it cut; Reachable ends it (fakewa.Server.Unreachable).
	Unreachable(ctx context.Context, jids []types.JID, d time.Duration) (int, error)
	Reachable(ctx context.Context) error
	// Silence starts a silence of d on the devices (none: the whole server) and returns how many
	// open connections went silent; EndSilence ends it (fakewa.Server.Silence).
	Silence(ctx context.Context, jids []types.JID, d time.Duration) (int, error)
	EndSilence(ctx context.Context) error
	// CutHandshakes closes every new connection mid-handshake for d (fakewa.Server.CutHandshakes).
	CutHandshakes(ctx context.Context, d time.Duration) error
	Stats(ctx context.Context) (fakewa.Stats, error)
	EventsSince(ctx context.Context, seq uint64) ([]fakewa.Event, error)
	Devices(ctx context.Context) ([]fakewa.DeviceInfo, error)
	SendMessage(ctx context.Context, jid types.JID, m fakewa.PhoneMessage) (string, error)
}

// inProcess adapts *fakewa.Server to waSide.
type inProcess struct{ s *fakewa.Server }

func (w inProcess) Pair(ctx context.Context, qr, phone string) (types.JID, error) {
	return w.s.Pair(ctx, qr, phone)
}
func (w inProcess) Drop(_ context.Context, jid types.JID) error    { return w.s.Drop(jid) }
func (w inProcess) Replace(_ context.Context, jid types.JID) error { return w.s.Replace(jid) }
func (w inProcess) Logout(_ context.Context, jid types.JID) error  { return w.s.Logout(jid) }
func (w inProcess) Restart(context.Context) error                  { return w.s.Restart() }
func (w inProcess) Unreachable(_ context.Context, jids []types.JID, d time.Duration) (int, error) {
	return w.s.Unreachable(jids, d)
}
func (w inProcess) Reachable(context.Context) error { w.s.Reachable(); return nil }
func (w inProcess) Silence(_ context.Context, jids []types.JID, d time.Duration) (int, error) {
	return w.s.Silence(jids, d)
}
func (w inProcess) EndSilence(context.Context) error { w.s.EndSilence(); return nil }
func (w inProcess) CutHandshakes(_ context.Context, d time.Duration) error {
	return w.s.CutHandshakes(d)
}
func (w inProcess) Stats(context.Context) (fakewa.Stats, error) { return w.s.Stats(), nil }
func (w inProcess) EventsSince(_ context.Context, seq uint64) ([]fakewa.Event, error) {
	return w.s.EventsSince(seq), nil
}
func (w inProcess) Devices(context.Context) ([]fakewa.DeviceInfo, error) { return w.s.Devices(), nil }
func (w inProcess) SendMessage(ctx context.Context, jid types.JID, m fakewa.PhoneMessage) (string, error) {
	return w.s.SendMessage(ctx, jid, m)
}

// remote adapts *fakewa.ControlClient to waSide.
type remote struct{ c *fakewa.ControlClient }

func (w remote) Pair(ctx context.Context, qr, phone string) (types.JID, error) {
	return w.c.Pair(ctx, qr, phone)
}
func (w remote) Drop(ctx context.Context, jid types.JID) error    { return w.c.Drop(ctx, jid) }
func (w remote) Replace(ctx context.Context, jid types.JID) error { return w.c.Replace(ctx, jid) }
func (w remote) Logout(ctx context.Context, jid types.JID) error  { return w.c.Logout(ctx, jid) }
func (w remote) Restart(ctx context.Context) error                { return w.c.Restart(ctx) }
func (w remote) Unreachable(ctx context.Context, jids []types.JID, d time.Duration) (int, error) {
	return w.c.Unreachable(ctx, jids, d)
}
func (w remote) Reachable(ctx context.Context) error { return w.c.Reachable(ctx) }
func (w remote) Silence(ctx context.Context, jids []types.JID, d time.Duration) (int, error) {
	return w.c.Silence(ctx, jids, d)
}
func (w remote) EndSilence(ctx context.Context) error { return w.c.EndSilence(ctx) }
func (w remote) CutHandshakes(ctx context.Context, d time.Duration) error {
	return w.c.CutHandshakes(ctx, d)
}
func (w remote) Stats(ctx context.Context) (fakewa.Stats, error) { return w.c.Stats(ctx) }
func (w remote) EventsSince(ctx context.Context, seq uint64) ([]fakewa.Event, error) {
	return w.c.Events(ctx, seq)
}
func (w remote) Devices(ctx context.Context) ([]fakewa.DeviceInfo, error) { return w.c.Devices(ctx) }
func (w remote) SendMessage(ctx context.Context, jid types.JID, m fakewa.PhoneMessage) (string, error) {
	return w.c.SendMessage(ctx, jid, m)
}

// phones tails fakewa's event log: it resolves pairing refs to their issue time (for QR
// visibility), knows when each device last connected, and implements user.Phone.
type phones struct {
	wa waSide

	mu        sync.Mutex
	seq       uint64
	refs      map[string]truth.RefIssue
	connected map[string]time.Time // jid -> last connected
	// offline is when each device last went offline (disconnected, logged out or replaced).
	offline map[string]time.Time
	// online is the connection each device is logged in on now (fakewa's Event.Conn). A device
	// may have two connections for a moment: a new login while the previous one is still open
	// (replaced) or closed but not yet torn down (a drop whose handler ends after the
	// reconnect), whose disconnected event then follows the new connected one; only the
	// disconnection of the connection it is logged in on takes a device offline.
	online map[string]uint64
	// ended are devices logged out or replaced: they do not come back by themselves.
	ended   map[string]bool
	changed chan struct{}
	// messages is the ground truth of the customers' messages the users write through Write
	// (user.Env.Messages) and of the receipts fakewa sent for messages the gateway sent.
	messages *truth.Messages
}

func newPhones(wa waSide) *phones {
	return &phones{wa: wa, refs: map[string]truth.RefIssue{}, connected: map[string]time.Time{}, offline: map[string]time.Time{}, online: map[string]uint64{}, ended: map[string]bool{}, changed: make(chan struct{}),
		messages: truth.NewMessages()}
}

// poll reads new fakewa events.
func (p *phones) poll(ctx context.Context) error {
	p.mu.Lock()
	seq := p.seq
	p.mu.Unlock()
	events, err := p.wa.EventsSince(ctx, seq)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range events {
		p.seq = max(p.seq, e.Seq)
		switch e.Kind {
		case fakewa.EventQRRefsIssued:
			for i, r := range e.Refs {
				p.refs[r] = truth.RefIssue{At: e.Time, Index: i}
			}
		case fakewa.EventConnected:
			p.connected[e.JID] = e.Time
			p.online[e.JID] = e.Conn
			delete(p.ended, e.JID)
		case fakewa.EventDisconnected:
			if !p.loggedInOn(e.JID, e.Conn) {
				continue // a connection the device had already left by a newer login
			}
			delete(p.online, e.JID)
			p.offline[e.JID] = e.Time
		case fakewa.EventReplaced:
			if !p.loggedInOn(e.JID, e.Conn) {
				continue
			}
			delete(p.online, e.JID)
			p.offline[e.JID] = e.Time
			p.ended[e.JID] = true
		case fakewa.EventLoggedOut:
			delete(p.online, e.JID)
			p.offline[e.JID] = e.Time
			p.ended[e.JID] = true
		case fakewa.EventDeviceReceipt:
			if p.messages != nil && e.From != "" && e.Detail != "retry" {
				p.messages.Acked(e.MessageID)
			}
		case fakewa.EventReceiptSent:
			if p.messages != nil {
				status := laravel.ReceiptDelivered
				if e.Detail == "read" {
					status = laravel.ReceiptRead
				}
				p.messages.ReceiptSent(e.MessageID, status, e.Time)
			}
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
	return nil
}

// isOnline reports whether jid is logged in now. Callers hold p.mu.
func (p *phones) isOnline(jid string) bool {
	_, ok := p.online[jid]
	return ok
}

// loggedInOn reports whether jid is online on connection conn. Callers hold p.mu.
func (p *phones) loggedInOn(jid string, conn uint64) bool {
	on, ok := p.online[jid]
	return ok && on == conn
}

// RefIssue resolves a pairing ref.
func (p *phones) RefIssue(ref string) (truth.RefIssue, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.refs[ref]
	return r, ok
}

// Online counts devices connected now.
func (p *phones) Online() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.online)
}

// Back counts the devices of jids that are online now, and those that can still come back: not
// logged out or replaced since on WhatsApp's side, and not of a session its user logged out
// (userEnded: the ledger's truth.Ledger.LoggedOut; such a device is not counted even while still
// online, as its logout is on its way).
func (p *phones) Back(jids []string, userEnded map[string]bool) (online, expected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range jids {
		switch {
		case userEnded[j]:
		case p.isOnline(j):
			online++
			expected++
		case !p.ended[j]:
			expected++
		}
	}
	return online, expected
}

// Missing describes the devices of jids that are offline now and can still come back (as Back
// counts them): each with when it went offline and last connected (fakewa's times), for a
// recovery that did not happen.
func (p *phones) Missing(jids []string, userEnded map[string]bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, j := range jids {
		if p.isOnline(j) || p.ended[j] || userEnded[j] {
			continue
		}
		out = append(out, fmt.Sprintf("%s offline since %s, last connected %s", j,
			p.offline[j].UTC().Format("15:04:05.000"), p.connected[j].UTC().Format("15:04:05.000")))
	}
	return out
}

// TakenOver follows the devices of jids (online at since) that went offline at or after since:
// dropped counts those that can come back (not logged out or replaced since), back those of them
// connected again after they went offline, and last is the latest of those reconnects (fakewa's
// times). A replica's SIGKILL closes its devices' connections at once; they are taken over when
// back == dropped.
func (p *phones) TakenOver(jids []string, since time.Time) (dropped, back int, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range jids {
		off, ok := p.offline[j]
		if !ok || off.Before(since) || p.ended[j] {
			continue
		}
		dropped++
		if on := p.connected[j]; p.isOnline(j) && !on.Before(off) {
			back++
			if on.After(last) {
				last = on
			}
		}
	}
	return dropped, back, last
}

// OnlineJIDs lists the devices connected now.
func (p *phones) OnlineJIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.online))
	for j := range p.online {
		out = append(out, j)
	}
	return out
}

func (p *phones) Pair(ctx context.Context, qr, phone string) (string, error) {
	jid, err := p.wa.Pair(ctx, qr, phone)
	if err != nil {
		return "", err
	}
	return jid.String(), nil
}

func (p *phones) WaitConnected(ctx context.Context, jid string, after time.Time) (time.Time, error) {
	for {
		p.mu.Lock()
		at, ok := p.connected[jid]
		ch := p.changed
		p.mu.Unlock()
		if ok && !at.Before(after) {
			return at, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func (p *phones) act(jid string, f func(context.Context, types.JID) error) error {
	j, err := types.ParseJID(jid)
	if err != nil {
		return fmt.Errorf("device %q: %w", jid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f(ctx, j)
}

func (p *phones) Drop(jid string) error    { return p.act(jid, p.wa.Drop) }
func (p *phones) Replace(jid string) error { return p.act(jid, p.wa.Replace) }
func (p *phones) Logout(jid string) error  { return p.act(jid, p.wa.Logout) }

// Write makes the phone from write to the device jid (user.Phone).
func (p *phones) Write(ctx context.Context, jid, from, text, quote string) (string, error) {
	j, err := types.ParseJID(jid)
	if err != nil {
		return "", fmt.Errorf("device %q: %w", jid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.wa.SendMessage(ctx, j, fakewa.PhoneMessage{From: from, Text: text, Quote: quote})
}
