package fakewa

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

func TestControlAPIPairsDropsAndReportsOverHTTP(t *testing.T) {
	srv := startServer(t, Config{})
	api := httptest.NewServer(srv.ControlHandler())
	defer api.Close()
	ctl := &ControlClient{BaseURL: api.URL, HTTP: api.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	addr, pub, err := ctl.Info(ctx)
	if err != nil || addr != srv.Addr() || string(pub) != string(srv.RootPublicKey()) {
		t.Fatalf("Info = %s %x, %v", addr, pub, err)
	}

	tc := newTestClient(t, addr)
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := waitFor[*events.QR](tc)
	jid, err := ctl.Pair(ctx, qr.Codes[1], "5511900000200")
	if err != nil {
		t.Fatalf("POST /pair: %v", err)
	}
	waitFor[*events.PairSuccess](tc)
	waitFor[*events.Connected](tc)

	devices, err := ctl.Devices(ctx)
	if err != nil || len(devices) != 1 || devices[0].JID != jid.String() || devices[0].State != DeviceOnline {
		t.Fatalf("GET /devices = %+v, %v", devices, err)
	}

	if err := ctl.Drop(ctx, jid); err != nil {
		t.Fatalf("POST drop: %v", err)
	}
	waitFor[*events.Disconnected](tc)
	waitFor[*events.Connected](tc)

	if err := ctl.Restart(ctx); err != nil {
		t.Fatalf("POST /restart: %v", err)
	}
	waitFor[*events.Disconnected](tc)
	waitFor[*events.Connected](tc)

	if err := ctl.Replace(ctx, jid); err != nil {
		t.Fatalf("POST replace: %v", err)
	}
	waitFor[*events.StreamReplaced](tc)

	if err := ctl.Logout(ctx, jid); err != nil {
		t.Fatalf("POST logout: %v", err)
	}
	evs, err := ctl.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []EventKind
	for _, e := range evs {
		if e.JID == jid.String() && e.Kind != EventDisconnected && e.Kind != EventRestarted {
			kinds = append(kinds, e.Kind)
		}
	}
	want := []EventKind{EventPaired, EventConnected, EventDropped, EventConnected, EventConnected, EventReplaced, EventLoggedOut}
	if len(kinds) != len(want) {
		t.Fatalf("events for %s: %v, want %v", jid, kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events for %s: %v, want %v", jid, kinds, want)
		}
	}
	later, err := ctl.Events(ctx, evs[len(evs)-1].Seq)
	if err != nil || len(later) != 0 {
		t.Fatalf("events since the last: %d, %v", len(later), err)
	}
	st, err := ctl.Stats(ctx)
	if err != nil || st.Devices != 1 || st.RSSBytes == 0 || st.Goroutines == 0 {
		t.Fatalf("GET /stats = %+v, %v", st, err)
	}
}

func TestControlAPIErrorsCarryUsefulStatuses(t *testing.T) {
	srv := startServer(t, Config{})
	api := httptest.NewServer(srv.ControlHandler())
	defer api.Close()
	ctl := &ControlClient{BaseURL: api.URL, HTTP: api.Client()}
	ctx := context.Background()
	status := func(err error) int {
		var ce *ControlError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v is not a ControlError", err)
		}
		return ce.Status
	}
	unknown := types.NewADJID("5511900000299", 0, 1)
	if s := status(ctl.Drop(ctx, unknown)); s != http.StatusNotFound {
		t.Fatalf("drop unknown device: %d, want 404", s)
	}
	if _, err := ctl.Pair(ctx, "garbage", "5511900000299"); status(err) != http.StatusBadRequest {
		t.Fatalf("pair with a bad QR: %v, want 400", err)
	}
	validButUnknown := "2@x," + b64(32) + "," + b64(32) + "," + b64(32)
	if _, err := ctl.Pair(ctx, validButUnknown, "5511900000299"); status(err) != http.StatusNotFound {
		t.Fatalf("pair with an unknown ref: %v, want 404", err)
	}
	if err := ctl.do(ctx, http.MethodPost, "/restart", RestartRequest{Downtime: "soon"}, nil); status(err) != http.StatusBadRequest {
		t.Fatalf("restart with a bad downtime: %v, want 400", err)
	}
	// An outage and a silence take a positive length and device JIDs, alike (devicesFor).
	for _, path := range []string{"/unreachable", "/silence"} {
		for _, bad := range []UnreachableRequest{{For: "soon"}, {For: "-1s"}, {}} {
			if err := ctl.do(ctx, http.MethodPost, path, bad, nil); status(err) != http.StatusBadRequest {
				t.Fatalf("%s %+v: %v, want 400", path, bad, err)
			}
		}
		if err := ctl.do(ctx, http.MethodPost, path, UnreachableRequest{For: "5s", Devices: []string{unknown.String()}}, nil); status(err) != http.StatusNotFound {
			t.Fatalf("%s of an unknown device: %v, want 404", path, err)
		}
	}
	if err := ctl.RestartWithDowntime(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("restart with downtime: %v", err)
	}
	resp, err := http.Post(api.URL+"/pair", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty body: %v %v", resp.Status, err)
	}
	resp.Body.Close()
}
