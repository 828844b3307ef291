package fakewa

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func TestADevicesReceiptScheduleDecidesWhenItsMessagesAreDeliveredAndRead(t *testing.T) {
	srv := startServer(t, Config{Receipts: ReceiptsNone})
	api := httptest.NewServer(srv.ControlHandler())
	defer api.Close()
	ctl := &ControlClient{BaseURL: api.URL, HTTP: api.Client()}
	tc, jid := pairedClient(t, srv, "5511900000309")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	to := types.NewJID(contactPhone, types.DefaultUserServer)
	receipt := func(typ types.ReceiptType, id string) func(any) bool {
		return func(e any) bool {
			r, ok := e.(*events.Receipt)
			return ok && r.Type == typ && r.MessageIDs[0] == id
		}
	}

	if err := ctl.SetReceiptSchedule(ctx, jid, &ReceiptSchedule{DeliveredAfter: 0, ReadAfter: 300 * time.Millisecond}); err != nil {
		t.Fatalf("POST receipts: %v", err)
	}
	start := time.Now()
	first, err := tc.cli.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("¿llegó?")})
	if err != nil {
		t.Fatal(err)
	}
	tc.next(receipt(types.ReceiptTypeDelivered, first.ID), "delivery receipt")
	tc.next(receipt(types.ReceiptTypeRead, first.ID), "read receipt")
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("read receipt after %s, want at least the scheduled 300ms", waited)
	}

	if err := ctl.SetReceiptSchedule(ctx, jid, &ReceiptSchedule{DeliveredAfter: 0, ReadAfter: -1}); err != nil {
		t.Fatal(err)
	}
	second, err := tc.cli.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("¿y este?")})
	if err != nil {
		t.Fatal(err)
	}
	tc.next(receipt(types.ReceiptTypeDelivered, second.ID), "delivery receipt")
	time.Sleep(300 * time.Millisecond)
	if tc.saw(receipt(types.ReceiptTypeRead, second.ID)) {
		t.Fatal("a message whose schedule says never read was read")
	}

	// Back to the server's policy (none here): no receipt at all.
	if err := ctl.SetReceiptSchedule(ctx, jid, nil); err != nil {
		t.Fatal(err)
	}
	third, err := tc.cli.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("¿hola?")})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if tc.saw(receipt(types.ReceiptTypeDelivered, third.ID)) {
		t.Fatal("after a reset the server's ReceiptsNone policy still sent a receipt")
	}
	sent := 0
	for _, e := range srv.EventsFor(jid) {
		if e.Kind == EventReceiptSent {
			sent++
		}
	}
	if sent != 3 {
		t.Fatalf("server recorded %d receipts sent, want 3 (delivered+read, delivered)", sent)
	}
	// The client acks each receipt from its own goroutine; let those finish before cleanup.
	for srv.Stats().ClientAcks < 3 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAReceiptScheduleNeedsTwoDelaysOrAReset(t *testing.T) {
	for _, bad := range []ReceiptScheduleRequest{{DeliveredAfter: "1s"}, {DeliveredAfter: "soon", ReadAfter: "1s"}, {DeliveredAfter: "-1s", ReadAfter: "1s"}} {
		if _, err := bad.parse(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if s, err := (ReceiptScheduleRequest{DeliveredAfter: "never", ReadAfter: "2s"}).parse(); err != nil || s.DeliveredAfter >= 0 || s.ReadAfter != 2*time.Second {
		t.Errorf("never/2s parsed as %+v, %v", s, err)
	}
	if s, err := (ReceiptScheduleRequest{Reset: true}).parse(); err != nil || s != nil {
		t.Errorf("reset parsed as %+v, %v", s, err)
	}
}
