package fakewa_test

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"

	"wagate/gateway/wadial"
	"wagate/simulator/fakewa"
)

// A whole session against an in-process fakewa: a whatsmeow client shows a QR code, a fake phone
// scans it, the client reconnects as the new device, and the server then drops it.
func Example() {
	ctx := context.Background()
	srv, err := fakewa.New(fakewa.Config{RootKey: fakewa.RootKeyFromSeed([]byte("my package's tests"))})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Close()

	container, err := sqlstore.New(ctx, "sqlite", "file:/tmp/example.db?_pragma=foreign_keys(1)", nil)
	if err != nil {
		panic(err)
	}
	cli := whatsmeow.NewClient(container.NewDevice(), nil)
	// Test-only: dial fakewa and trust its root key (process-wide).
	if err := (wadial.Config{Addr: srv.Addr(), RootPubKey: srv.RootPublicKey()}).Apply(cli); err != nil {
		panic(err)
	}
	qr, connected := make(chan string, 1), make(chan struct{}, 4)
	cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.QR:
			qr <- e.Codes[0]
		case *events.Connected:
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(); err != nil {
		panic(err)
	}
	jid, err := srv.Pair(ctx, <-qr, "5511999990000") // the phone scans the first code
	if err != nil {
		panic(err)
	}
	<-connected
	_ = srv.Drop(jid) // whatsmeow: Disconnected, then Connected again
	<-connected
	for _, e := range srv.EventsFor(jid) {
		fmt.Println(e.Kind)
	}
}
