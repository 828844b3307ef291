package session

import (
	"testing"
	"time"
)

func TestTheDefaultQRRotationIsWhatsAppWebs(t *testing.T) {
	want := QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 6}
	if got := DefaultQRTiming(); got != want {
		t.Errorf("DefaultQRTiming() = %+v, want %+v", got, want)
	}
	if got := (QRTiming{Next: 5 * time.Second}).WithDefaults(); got != (QRTiming{First: 60 * time.Second, Next: 5 * time.Second, Codes: 6}) {
		t.Errorf("WithDefaults keeps set fields and fills the others: got %+v", got)
	}
}

func TestEachCodeIsShownAfterThePreviousOne(t *testing.T) {
	q := QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 6}
	windows := [][2]time.Duration{{0, 60 * time.Second}, {60 * time.Second, 80 * time.Second}, {80 * time.Second, 100 * time.Second}}
	for k, w := range windows {
		from, until := q.Window(k)
		if from != w[0] || until != w[1] {
			t.Errorf("Window(%d) = %v..%v, want %v..%v", k, from, until, w[0], w[1])
		}
		if q.ShownFor(k) != until-from {
			t.Errorf("ShownFor(%d) = %v, want %v", k, q.ShownFor(k), until-from)
		}
	}
}
