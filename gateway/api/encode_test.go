package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
)

func TestSessionEncodingMatchesEncodingJSON(t *testing.T) {
	yes, no := true, false
	at := time.Date(2026, 11, 27, 14, 5, 6, 123456789, time.UTC)
	cases := []sessionJSON{
		sessionView(session.Info{SessionID: "shop_1", Status: laravel.StatusPending, QR: "2@abc", QRExpiresAt: at.Add(time.Minute), Version: 3, UpdatedAt: at}, nil, ""),
		sessionView(session.Info{SessionID: "s-2", Status: laravel.StatusConnected, Connected: true, Paired: true, Version: 1 << 40, UpdatedAt: at.In(time.FixedZone("X", 3600))}, &yes, ""),
		sessionView(session.Info{SessionID: "s3", Status: laravel.StatusLoggedOut}, &no, ""),
		sessionView(session.Info{SessionID: "s4", Status: laravel.StatusDisconnected, Version: -1, UpdatedAt: at.Truncate(time.Second)}, nil, "isSessionActive unavailable: the Laravel lookup failed"),
		{SessionID: "odd \"<id>\" & \\ \n é \u2028", Status: "weird\tstatus", ActiveError: "<b>ü</b>", UpdatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{},
	}
	for i, v := range cases {
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(v)
		if v.UpdatedAt.Year() > 9999 {
			// encoding/json refuses such a time and writes nothing; ours writes null instead.
			if got := appendSession(nil, &v); !json.Valid(got) {
				t.Errorf("case %d: invalid JSON %s", i, got)
			}
			continue
		}
		rec := httptest.NewRecorder()
		writeSession(rec, 200, &v)
		if rec.Body.String() != want.String() {
			t.Errorf("case %d:\n got %s\nwant %s", i, rec.Body, want.String())
		}
		if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("case %d: headers %v", i, rec.Header())
		}
	}
}

func FuzzSessionEncodingMatchesEncodingJSON(f *testing.F) {
	f.Add("shop_1", "connected", "", int64(7), int64(1700000000123456789))
	f.Add("a\"b", "<x>", "\u2028\xff", int64(-3), int64(0))
	f.Fuzz(func(t *testing.T, id, status, activeErr string, version, unixNano int64) {
		v := sessionJSON{SessionID: id, Status: laravel.Status(status), ActiveError: activeErr, Version: version, UpdatedAt: time.Unix(0, unixNano).UTC()}
		want, err := json.Marshal(v)
		if err != nil {
			t.Skip()
		}
		if got := appendSession(nil, &v); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}
