package fakewa

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// ControlClient is a Go client of ControlHandler's JSON API (a standalone fakewa).
type ControlClient struct {
	// BaseURL is the control API's root, e.g. "http://127.0.0.1:9001".
	BaseURL string
	// HTTP is the client used; default a client with a 60 s timeout.
	HTTP *http.Client
}

// NewControlClient returns a client for the control API listening on addr (host:port).
func NewControlClient(addr string) *ControlClient {
	return &ControlClient{BaseURL: "http://" + addr, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

func (c *ControlClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fakewa control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("fakewa control %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		_ = json.Unmarshal(data, &eb)
		return &ControlError{Status: resp.StatusCode, Message: eb.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("fakewa control %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Info returns the server's WebSocket address and root public key.
func (c *ControlClient) Info(ctx context.Context) (addr string, rootPub []byte, err error) {
	var info Info
	if err := c.do(ctx, http.MethodGet, "/info", nil, &info); err != nil {
		return "", nil, err
	}
	pub, err := hex.DecodeString(info.RootPublicKey)
	if err != nil {
		return "", nil, fmt.Errorf("fakewa control: root key: %w", err)
	}
	return info.Addr, pub, nil
}

// Pair scans qr as phone (POST /pair) and returns the new device JID.
func (c *ControlClient) Pair(ctx context.Context, qr, phone string) (types.JID, error) {
	var resp PairResponse
	if err := c.do(ctx, http.MethodPost, "/pair", PairRequest{QR: qr, Phone: phone}, &resp); err != nil {
		return types.EmptyJID, err
	}
	return types.ParseJID(resp.JID)
}

// Devices lists every paired device.
func (c *ControlClient) Devices(ctx context.Context) ([]DeviceInfo, error) {
	var out []DeviceInfo
	return out, c.do(ctx, http.MethodGet, "/devices", nil, &out)
}

func (c *ControlClient) deviceAction(ctx context.Context, jid types.JID, action string, in any) error {
	return c.do(ctx, http.MethodPost, "/devices/"+url.PathEscape(jid.String())+"/"+action, in, nil)
}

// Drop cuts the device's connection (network drop).
func (c *ControlClient) Drop(ctx context.Context, jid types.JID) error {
	return c.deviceAction(ctx, jid, "drop", nil)
}

// Replace sends stream replaced to the device.
func (c *ControlClient) Replace(ctx context.Context, jid types.JID) error {
	return c.deviceAction(ctx, jid, "replace", nil)
}

// Logout removes the device (401 device_removed, or refused at its next connect when offline).
func (c *ControlClient) Logout(ctx context.Context, jid types.JID) error {
	return c.deviceAction(ctx, jid, "logout", nil)
}

// LogoutOnConnect removes the device and drops it, so its reconnect is refused with 401.
func (c *ControlClient) LogoutOnConnect(ctx context.Context, jid types.JID) error {
	return c.deviceAction(ctx, jid, "logout-on-connect", nil)
}

// FailNextConnect answers the device's next login with <failure reason=reason/>.
func (c *ControlClient) FailNextConnect(ctx context.Context, jid types.JID, reason int) error {
	return c.deviceAction(ctx, jid, "fail-next-connect", FailNextConnectRequest{Reason: reason})
}

// SetKeepaliveSilence makes the server ignore or answer the device's keepalives.
func (c *ControlClient) SetKeepaliveSilence(ctx context.Context, jid types.JID, silent bool) error {
	return c.deviceAction(ctx, jid, "keepalive-silence", KeepaliveSilenceRequest{Silent: silent})
}

// SetReceiptSchedule sets when the device's messages get their receipts (nil: the server's policy).
func (c *ControlClient) SetReceiptSchedule(ctx context.Context, jid types.JID, sched *ReceiptSchedule) error {
	req := ReceiptScheduleRequest{Reset: sched == nil}
	if sched != nil {
		format := func(d time.Duration) string {
			if d < 0 {
				return "never"
			}
			return d.String()
		}
		req.DeliveredAfter, req.ReadAfter = format(sched.DeliveredAfter), format(sched.ReadAfter)
	}
	return c.deviceAction(ctx, jid, "receipts", req)
}

// SendMessage makes a contact's phone write m to the device and returns the message id.
func (c *ControlClient) SendMessage(ctx context.Context, jid types.JID, m PhoneMessage) (string, error) {
	var resp SendMessageResponse
	if err := c.do(ctx, http.MethodPost, "/devices/"+url.PathEscape(jid.String())+"/messages", m, &resp); err != nil {
		return "", err
	}
	return resp.ID, nil
}

// Restart sends stream:error 503 to every connection.
func (c *ControlClient) Restart(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/restart", nil, nil)
}

// RestartWithDowntime restarts and then refuses new connections for downtime.
func (c *ControlClient) RestartWithDowntime(ctx context.Context, downtime time.Duration) error {
	return c.do(ctx, http.MethodPost, "/restart", RestartRequest{Downtime: downtime.String()}, nil)
}

// Unreachable starts an outage of d on the devices (none: every connection) and returns how
// many connections it cut (Server.Unreachable).
func (c *ControlClient) Unreachable(ctx context.Context, jids []types.JID, d time.Duration) (int, error) {
	req := UnreachableRequest{For: d.String()}
	for _, j := range jids {
		req.Devices = append(req.Devices, j.String())
	}
	var resp UnreachableResponse
	if err := c.do(ctx, http.MethodPost, "/unreachable", req, &resp); err != nil {
		return 0, err
	}
	return resp.Cut, nil
}

// Reachable ends every outage now.
func (c *ControlClient) Reachable(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/reachable", nil, nil)
}

// CutHandshakes closes, for d, every connection after its client hello, before the server's
// (Server.CutHandshakes).
func (c *ControlClient) CutHandshakes(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/handshakes/cut", CutHandshakesRequest{For: d.String()}, nil)
}

// Silence starts a silence of d on the devices (none: the whole server) and returns how many
// open connections went silent (Server.Silence).
func (c *ControlClient) Silence(ctx context.Context, jids []types.JID, d time.Duration) (int, error) {
	req := SilenceRequest{For: d.String()}
	for _, j := range jids {
		req.Devices = append(req.Devices, j.String())
	}
	var resp SilenceResponse
	if err := c.do(ctx, http.MethodPost, "/silence", req, &resp); err != nil {
		return 0, err
	}
	return resp.Silenced, nil
}

// EndSilence ends every silence now (Server.EndSilence).
func (c *ControlClient) EndSilence(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/silence/end", nil, nil)
}

// Events returns the events with Seq greater than since.
func (c *ControlClient) Events(ctx context.Context, since uint64) ([]Event, error) {
	var out []Event
	return out, c.do(ctx, http.MethodGet, "/events?since="+strconv.FormatUint(since, 10), nil, &out)
}

// Stats returns the server's resource counters.
func (c *ControlClient) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	return out, c.do(ctx, http.MethodGet, "/stats", nil, &out)
}
