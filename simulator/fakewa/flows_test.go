package fakewa

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func TestUnpairedClientGetsOneQRCodePerConfiguredRef(t *testing.T) {
	srv := startServer(t, Config{PairRefs: 3})
	tc := newTestClient(t, srv.Addr())
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := waitFor[*events.QR](tc)
	if len(qr.Codes) != 3 {
		t.Fatalf("QR codes = %d, want 3", len(qr.Codes))
	}
	issued := srv.Events()[0]
	if issued.Kind != EventQRRefsIssued || len(issued.Refs) != 3 {
		t.Fatalf("first server event = %+v, want qr_refs_issued with 3 refs", issued)
	}
	for i, code := range qr.Codes {
		q, err := ParseQR(code)
		if err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
		if q.Ref != issued.Refs[i] {
			t.Fatalf("code %d ref %q, server issued %q", i, q.Ref, issued.Refs[i])
		}
	}
}

func TestPairingLinksTheDeviceAndTheClientReconnectsLoggedIn(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000001")

	if got := tc.cli.Store.ID; got == nil || *got != jid {
		t.Fatalf("client store ID = %v, want %s", got, jid)
	}
	if !tc.cli.IsLoggedIn() {
		t.Fatal("client not logged in after Connected")
	}
	info, err := srv.Device(jid)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != DeviceOnline || info.Phone != "5511900000001" || info.Logins != 1 {
		t.Fatalf("device = %+v, want online, phone 5511900000001, 1 login", info)
	}
	if tc.cli.Store.LID.User == "" || tc.cli.Store.LID.String() != info.LID {
		t.Fatalf("client LID %s, server LID %s", tc.cli.Store.LID, info.LID)
	}
	kinds := map[EventKind]int{}
	for _, e := range srv.Events() {
		kinds[e.Kind]++
	}
	if kinds[EventPaired] != 1 || kinds[EventConnected] != 1 {
		t.Fatalf("server events %v, want one paired and one connected", kinds)
	}
}

func TestSecondPairingOfTheSamePhoneGetsTheNextDeviceID(t *testing.T) {
	srv := startServer(t, Config{})
	_, first := pairedClient(t, srv, "5511900000002")
	_, second := pairedClient(t, srv, "5511900000002")
	if first.User != second.User || second.Device != first.Device+1 {
		t.Fatalf("devices %s then %s, want the same user with consecutive device IDs", first, second)
	}
}

func TestNetworkDropGivesDisconnectedThenAutomaticReconnect(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000003")

	if err := srv.Drop(jid); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Disconnected](tc)
	waitFor[*events.Connected](tc)
	info, _ := srv.Device(jid)
	if info.Logins != 2 || info.State != DeviceOnline {
		t.Fatalf("after drop: %+v, want a second login and online", info)
	}
	waitServerEvent(t, srv, EventDropped, jid)
	waitServerEvent(t, srv, EventDisconnected, jid)
}

func TestStreamReplacedStopsTheClientWithoutReconnecting(t *testing.T) {
	srv := startServer(t, Config{StreamErrorCloseDelay: 100 * time.Millisecond})
	tc, jid := pairedClient(t, srv, "5511900000004")

	if err := srv.Replace(jid); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.StreamReplaced](tc)
	waitServerEvent(t, srv, EventDisconnected, jid)
	time.Sleep(300 * time.Millisecond) // a reconnect would be immediate
	if tc.saw(is[*events.Disconnected]) {
		t.Fatal("replaced client also emitted Disconnected (the close came before the stream error)")
	}
	if info, _ := srv.Device(jid); info.Logins != 1 || info.State != DeviceOffline {
		t.Fatalf("after replace: %+v, want offline with one login", info)
	}
	var kinds []EventKind
	for _, e := range srv.EventsFor(jid) {
		kinds = append(kinds, e.Kind)
	}
	want := []EventKind{EventPaired, EventConnected, EventReplaced, EventDisconnected}
	if len(kinds) != len(want) || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] || kinds[3] != want[3] {
		t.Fatalf("device events %v, want %v", kinds, want)
	}
}

func TestSecondLoginOfTheSameDeviceReplacesTheFirstConnection(t *testing.T) {
	srv := startServer(t, Config{})
	first, jid := pairedClient(t, srv, "5511900000005")

	second := first.twin(srv.Addr(), jid)
	if err := second.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](second)
	waitFor[*events.StreamReplaced](first)
	e := waitServerEvent(t, srv, EventReplaced, jid)
	if e.Detail != "new login" {
		t.Fatalf("replaced detail %q, want new login", e.Detail)
	}
	if info, _ := srv.Device(jid); info.Logins != 2 || info.State != DeviceOnline {
		t.Fatalf("device %+v, want online after 2 logins", info)
	}
	// The first connection ends after the second logged in: its disconnected event follows the
	// second's connected one, and the device stays online (EventDisconnected's Conn tells them
	// apart).
	waitServerEvent(t, srv, EventDisconnected, jid)
	var seen []Event
	for _, e := range srv.EventsFor(jid) {
		switch e.Kind {
		case EventConnected, EventReplaced, EventDisconnected:
			seen = append(seen, e)
		}
	}
	describe := func() string {
		var out []string
		for _, e := range seen {
			out = append(out, fmt.Sprintf("%s conn %d", e.Kind, e.Conn))
		}
		return strings.Join(out, ", ")
	}
	want := []EventKind{EventConnected, EventReplaced, EventConnected, EventDisconnected}
	if len(seen) != len(want) {
		t.Fatalf("device events %s, want kinds %v", describe(), want)
	}
	for i, k := range want {
		if seen[i].Kind != k {
			t.Fatalf("device events %s, want kinds %v", describe(), want)
		}
	}
	if firstConn := seen[0].Conn; seen[1].Conn != firstConn || seen[3].Conn != firstConn || seen[2].Conn == firstConn {
		t.Fatalf("device events %s: want the first connection replaced and ended, the second connected", describe())
	}
	if info, _ := srv.Device(jid); info.State != DeviceOnline {
		t.Fatalf("device %+v after the first connection ended, want online", info)
	}
}

func TestDeviceRemovedWhileConnectedLogsOutWithoutOnConnect(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000006")

	if err := srv.Logout(jid); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[*events.LoggedOut](tc)
	if lo.OnConnect {
		t.Fatalf("LoggedOut = %+v, want OnConnect false", lo)
	}
	if info, _ := srv.Device(jid); info.State != DeviceLoggedOut {
		t.Fatalf("device state %s, want logged_out", info.State)
	}
	waitServerEvent(t, srv, EventDisconnected, jid)
	time.Sleep(200 * time.Millisecond)
	if tc.saw(is[*events.Disconnected]) {
		t.Fatal("device_removed also emitted Disconnected")
	}
}

func TestDeviceRemovedWhileOfflineIsRefusedAtConnect(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000007")

	if err := srv.LogoutOnConnect(jid); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Disconnected](tc)
	lo := waitFor[*events.LoggedOut](tc)
	if !lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("LoggedOut = %+v, want OnConnect with reason 401", lo)
	}
	failed := waitServerEvent(t, srv, EventConnectFailed, jid)
	if failed.Code != 401 {
		t.Fatalf("connect_failed code %d, want 401", failed.Code)
	}
}

func TestServerRestartMakesEveryClientReconnect(t *testing.T) {
	srv := startServer(t, Config{})
	a, jidA := pairedClient(t, srv, "5511900000008")
	b, jidB := pairedClient(t, srv, "5511900000009")

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []*testClient{a, b} {
		waitFor[*events.Disconnected](tc)
		waitFor[*events.Connected](tc)
	}
	for _, jid := range []types.JID{jidA, jidB} {
		waitServerEvent(t, srv, EventRestarted, jid)
		if info, _ := srv.Device(jid); info.Logins != 2 {
			t.Fatalf("%s logins %d after restart, want 2", jid, info.Logins)
		}
	}
}

func TestKeepaliveSilenceGivesKeepAliveTimeoutAndAnswersRestoreIt(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000010")

	if err := srv.SetKeepaliveSilence(jid, true); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.KeepAliveTimeout](tc)
	waitServerEvent(t, srv, EventKeepaliveIgnored, jid)
	if err := srv.SetKeepaliveSilence(jid, false); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.KeepAliveRestored](tc)
}

func TestScheduledConnectFailureReachesTheClient(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000011")

	if err := srv.FailNextConnect(jid, 405); err != nil {
		t.Fatal(err)
	}
	if err := srv.Drop(jid); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.ClientOutdated](tc)
	// The client can see the failure before the server has finished closing its side.
	info, _ := srv.Device(jid)
	for deadline := time.Now().Add(5 * time.Second); info.State == DeviceOnline && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		info, _ = srv.Device(jid)
	}
	if info.State != DeviceOffline {
		t.Fatalf("device %s after 405, want offline (not logged out)", info.State)
	}
}

func TestSendMessageIsAckedAndFollowedByDeliveryAndReadReceipts(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000012")
	to := types.NewJID("5511988887777", types.DefaultUserServer)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := tc.cli.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("hello from the harness")})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if resp.Timestamp.IsZero() {
		t.Fatal("SendMessage response has no server timestamp")
	}
	delivered := tc.next(func(e any) bool {
		r, ok := e.(*events.Receipt)
		return ok && r.Type == types.ReceiptTypeDelivered && r.MessageIDs[0] == resp.ID
	}, "delivery receipt").(*events.Receipt)
	if delivered.Chat.User != to.User {
		t.Fatalf("receipt chat %s, want %s", delivered.Chat, to)
	}
	tc.next(func(e any) bool {
		r, ok := e.(*events.Receipt)
		return ok && r.Type == types.ReceiptTypeRead && r.MessageIDs[0] == resp.ID
	}, "read receipt")

	acked := waitServerEvent(t, srv, EventMessageAcked, jid)
	if acked.MessageID != resp.ID || acked.To != to.String() {
		t.Fatalf("message_acked %+v, want id %s to %s", acked, resp.ID, to)
	}

	// A second message reuses the Signal session: no new prekey fetch needed, still acked.
	resp2, err := tc.cli.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("second")})
	if err != nil || resp2.ID == resp.ID {
		t.Fatalf("second SendMessage: %v (id %s)", err, resp2.ID)
	}
	// The client acks each receipt from its own goroutine; let those sends finish before the
	// cleanup disconnects (whatsmeow's FrameSocket races a send against Close).
	for srv.Stats().ClientAcks < 4 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if acks := srv.Stats().ClientAcks; acks < 4 {
		t.Fatalf("client acked %d receipts, want 4", acks)
	}
}

// A peer message (whatsmeow asking the account's phone for a message it could not decrypt, after
// a retry receipt) is acked but gets no delivery or read receipt: those reached Laravel as read
// receipts of a chat with the account itself. The message sent after it still gets both.
func TestAPeerMessageIsAckedWithoutDeliveryOrReadReceipts(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000015")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	customer := types.NewJID("5511988886666", types.DefaultUserServer)
	// The node whatsmeow's sendPeerMessage writes (its encrypted content left out: fakewa reads
	// only the envelope; whatsmeow itself needs a Signal session with the phone to send one).
	peerID := tc.cli.GenerateMessageID()
	//lint:ignore SA1019 the test writes the envelope of a peer message, which no public API sends without a Signal session with the phone
	if err := tc.cli.DangerousInternals().SendNode(ctx, waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
		"id": peerID, "type": "text", "category": "peer", "to": tc.cli.Store.GetJID().ToNonAD()}}); err != nil {
		t.Fatalf("send the peer message: %v", err)
	}
	if acked := waitServerEvent(t, srv, EventMessageAcked, jid); acked.MessageID != peerID {
		t.Fatalf("message_acked %+v, want the peer message %s", acked, peerID)
	}
	after, err := tc.cli.SendMessage(ctx, customer, &waE2E.Message{Conversation: proto.String("after the peer message")})
	if err != nil {
		t.Fatal(err)
	}
	// fakewa sends a message's receipts right after its ack, in order: by the later message's read
	// receipt, any receipt of the peer message has arrived.
	tc.next(func(e any) bool {
		r, ok := e.(*events.Receipt)
		return ok && r.Type == types.ReceiptTypeRead && r.MessageIDs[0] == after.ID
	}, "the later message's read receipt")
	if tc.saw(func(e any) bool {
		r, ok := e.(*events.Receipt)
		return ok && slices.Contains(r.MessageIDs, peerID)
	}) {
		t.Fatal("the peer message got a receipt")
	}
	for srv.Stats().ClientAcks < 2 && ctx.Err() == nil { // the client's acks of the two receipts (see above)
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReceiptsCanBeTurnedOff(t *testing.T) {
	srv := startServer(t, Config{Receipts: ReceiptsNone})
	tc, _ := pairedClient(t, srv, "5511900000013")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := tc.cli.SendMessage(ctx, types.NewJID("5511977776666", types.DefaultUserServer),
		&waE2E.Message{Conversation: proto.String("x")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if tc.saw(is[*events.Receipt]) {
		t.Fatal("got a receipt with ReceiptsNone")
	}
}

func TestClientLogoutIsRecordedAndTheDeviceCannotLogInAgain(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000014")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := tc.cli.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	e := waitServerEvent(t, srv, EventLoggedOut, jid)
	if e.Detail != "client logout" {
		t.Fatalf("logged_out detail %q, want client logout", e.Detail)
	}
	if info, _ := srv.Device(jid); info.State != DeviceLoggedOut {
		t.Fatalf("state %s, want logged_out", info.State)
	}
}

func TestRestartWithDowntimeRefusesConnectionsUntilItEnds(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000015")

	start := time.Now()
	if err := srv.RestartWithDowntime(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Disconnected](tc)
	waitFor[*events.Connected](tc)
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("reconnected after %s, inside the 500ms downtime", took)
	}
	if st := srv.Stats(); st.Refused == 0 {
		t.Fatal("no connection was refused during the downtime")
	}
	if info, _ := srv.Device(jid); info.Logins != 2 {
		t.Fatalf("logins %d, want 2", info.Logins)
	}
}

func TestRootKeyFromSeedIsStable(t *testing.T) {
	a, b, c := RootKeyFromSeed([]byte("x")), RootKeyFromSeed([]byte("x")), RootKeyFromSeed([]byte("y"))
	if *a != *b || a.Pub == c.Pub {
		t.Fatal("same seed must give the same key, different seeds different keys")
	}
}

func TestDeviceLoggedOutWhileDisconnectedGetsLoggedOutOnItsNextConnect(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000016")
	tc.cli.Disconnect()
	waitServerEvent(t, srv, EventDisconnected, jid)

	if err := srv.Logout(jid); err != nil {
		t.Fatal(err)
	}
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[*events.LoggedOut](tc)
	if !lo.OnConnect || lo.Reason != events.ConnectFailureLoggedOut {
		t.Fatalf("LoggedOut = %+v, want OnConnect with reason 401", lo)
	}
	if failed := waitServerEvent(t, srv, EventConnectFailed, jid); failed.Code != 401 || failed.Detail != "device removed" {
		t.Fatalf("connect_failed %+v, want 401 device removed", failed)
	}
}

func TestPairRejectsAQRWhoseKeysDoNotMatchTheConnection(t *testing.T) {
	srv := startServer(t, Config{})
	tc := newTestClient(t, srv.Addr())
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	q, err := ParseQR(waitFor[*events.QR](tc).Codes[0])
	if err != nil {
		t.Fatal(err)
	}
	forged := q.Ref + "," + b64(32) + "," + b64(32) + "," + b64(32)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := srv.Pair(ctx, forged, "5511900000017"); !errors.Is(err, ErrQRMismatch) {
		t.Fatalf("forged QR: %v, want ErrQRMismatch", err)
	}
	if _, err := srv.Pair(ctx, "2@nope,"+b64(32)+","+b64(32)+","+b64(32), "5511900000017"); !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("unknown ref: %v, want ErrUnknownRef", err)
	}
	if _, err := srv.Pair(ctx, forged, "12ab"); !errors.Is(err, ErrBadPhone) {
		t.Fatalf("bad phone: %v, want ErrBadPhone", err)
	}
}
