package fakelaravel

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

func TestDecoderNamesEveryBadFieldLikeLaravel(t *testing.T) {
	body := `{"statuses":[
		{"session_id":"ok","estado_qr":"connected","version":1,"event_id":"e1","changed_at":"2026-11-27T12:00:00Z"},
		{"session_id":"bad id!","estado_qr":"connected","version":1,"event_id":"e2","changed_at":"2026-11-27T12:00:00Z"},
		{"session_id":"s3","estado_qr":"happy","version":0,"event_id":7,"changed_at":"tomorrow"},
		{"session_id":"s4","estado_qr":"pending","version":1.5}
	]}`
	_, verr := DecodeStatusBatch([]byte(body), 0)
	if verr == nil {
		t.Fatal("accepted")
	}
	want := map[string][]string{
		"statuses.1.session_id": {"The statuses.1.session id format is invalid."},
		"statuses.2.estado_qr":  {"The selected statuses.2.estado qr is invalid."},
		"statuses.2.version":    {"The statuses.2.version must be at least 1."},
		"statuses.2.event_id":   {"The statuses.2.event id must be a string."},
		"statuses.2.changed_at": {"The statuses.2.changed at is not a valid date."},
		"statuses.3.version":    {"The statuses.3.version must be an integer."},
		"statuses.3.event_id":   {"The statuses.3.event id field is required."},
		"statuses.3.changed_at": {"The statuses.3.changed at field is required."},
	}
	if verr.Message != "The given data was invalid." || !reflect.DeepEqual(verr.Errors, want) {
		got, _ := json.MarshalIndent(verr, "", "  ")
		t.Fatalf("got %s", got)
	}
}

func TestDecoderAcceptsAValidBatch(t *testing.T) {
	in := laravel.StatusBatch{Statuses: []laravel.StatusItem{{SessionID: "a-1", EstadoQR: laravel.StatusLoggedOut, Version: 9, EventID: "e", ChangedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}}}
	b, _ := json.Marshal(in)
	out, verr := DecodeStatusBatch(b, 0)
	if verr != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v %+v", out, verr)
	}
	q := laravel.QRBatch{QRs: []laravel.QRItem{{SessionID: "a", QR: "2@x,y,z", Version: 1, EventID: "e", GeneratedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}}
	b, _ = json.Marshal(q)
	if out, verr := DecodeQRBatch(b, 0); verr != nil || !reflect.DeepEqual(q, out) {
		t.Fatalf("got %+v %+v", out, verr)
	}
}

func TestDecoderEnforcesTheItemLimit(t *testing.T) {
	item := `{"session_id":"a","estado_qr":"pending","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}`
	body := `{"statuses":[` + strings.TrimSuffix(strings.Repeat(item+",", laravel.MaxBatchItems+1), ",") + `]}`
	_, verr := DecodeStatusBatch([]byte(body), 0)
	if verr == nil || verr.Errors["statuses"][0] != "The statuses may not have more than 500 items." {
		t.Fatalf("got %+v", verr)
	}
	body = `{"statuses":[` + strings.TrimSuffix(strings.Repeat(item+",", laravel.MaxBatchItems), ",") + `]}`
	if _, verr := DecodeStatusBatch([]byte(body), 0); verr != nil {
		t.Fatalf("500 items rejected: %+v", verr)
	}
}

// checkDecoded holds for every input: exactly one of batch and error; errors name fields and
// carry messages; an accepted batch has only valid items and survives a round trip.
func checkDecoded(t *testing.T, items int, ok bool, verr *laravel.ValidationError, valid func(int) bool, reencode func() ([]byte, error), redecode func([]byte) int) {
	if verr != nil {
		if ok || verr.Message == "" || len(verr.Errors) == 0 {
			t.Fatalf("bad error %+v", verr)
		}
		for field, msgs := range verr.Errors {
			if field == "" || len(msgs) == 0 || msgs[0] == "" {
				t.Fatalf("empty field error %q: %v", field, msgs)
			}
		}
		return
	}
	if items == 0 || items > laravel.MaxBatchItems {
		t.Fatalf("accepted %d items", items)
	}
	for i := range items {
		if !valid(i) {
			t.Fatalf("accepted invalid item %d", i)
		}
	}
	b, err := reencode()
	if err != nil {
		t.Fatal(err)
	}
	if n := redecode(b); n != items {
		t.Fatalf("round trip: %d items, want %d", n, items)
	}
}

func FuzzDecodeStatusBatch(f *testing.F) {
	f.Add([]byte(`{"statuses":[{"session_id":"a","estado_qr":"connected","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}]}`))
	f.Add([]byte(`{"statuses":[{"session_id":"a","estado_qr":"bogus","version":"1"}]}`))
	f.Add([]byte(`{"statuses":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, verr := DecodeStatusBatch(body, 0)
		checkDecoded(t, len(b.Statuses), b.Statuses != nil, verr,
			func(i int) bool {
				it := b.Statuses[i]
				return laravel.ValidSessionID(it.SessionID) && it.EstadoQR.Valid() && it.Version >= 1 && it.EventID != ""
			},
			func() ([]byte, error) { return json.Marshal(b) },
			func(data []byte) int {
				again, verr := DecodeStatusBatch(data, 0)
				if verr != nil {
					t.Fatalf("re-encoded batch rejected: %+v", verr)
				}
				return len(again.Statuses)
			})
	})
}

func FuzzDecodeQRBatch(f *testing.F) {
	f.Add([]byte(`{"qrs":[{"session_id":"a","qr":"2@abc","version":3,"event_id":"e","generated_at":"2026-11-27T12:00:00.5+01:00"}]}`))
	f.Add([]byte(`{"qrs":[null]}`))
	f.Add([]byte(`{"qrs":[{"qr":1e400}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, verr := DecodeQRBatch(body, 0)
		checkDecoded(t, len(b.QRs), b.QRs != nil, verr,
			func(i int) bool {
				it := b.QRs[i]
				return laravel.ValidSessionID(it.SessionID) && it.QR != "" && it.Version >= 1 && it.EventID != ""
			},
			func() ([]byte, error) { return json.Marshal(b) },
			func(data []byte) int {
				again, verr := DecodeQRBatch(data, 0)
				if verr != nil {
					t.Fatalf("re-encoded batch rejected: %+v", verr)
				}
				return len(again.QRs)
			})
	})
}
