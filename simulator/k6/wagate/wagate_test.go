package wagate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/truth"
	"wagate/simulator/user"
)

// fakePhone is the WhatsApp side: it rejects codes listed in reject (a code that rotated
// between reading and scanning) and records every action.
type fakePhone struct {
	mu      sync.Mutex
	reject  map[string]bool
	scanned []string
	actions []string
}

func (p *fakePhone) Pair(_ context.Context, qr, phone string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scanned = append(p.scanned, qr)
	if p.reject[qr] {
		return "", errors.New("unknown ref")
	}
	return phone + "@s.whatsapp.net", nil
}

func (p *fakePhone) WaitConnected(context.Context, string, time.Time) (time.Time, error) {
	return time.Now(), nil
}

func (p *fakePhone) act(what, jid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.actions = append(p.actions, what+" "+jid)
	return nil
}

func (p *fakePhone) Drop(jid string) error    { return p.act("drop", jid) }
func (p *fakePhone) Replace(jid string) error { return p.act("replace", jid) }
func (p *fakePhone) Logout(jid string) error  { return p.act("logout", jid) }

// Write records a customer's message to the device (quoting quote when set).
func (p *fakePhone) Write(_ context.Context, jid, from, text, quote string) (string, error) {
	what := "write " + from + " " + text
	if quote != "" {
		what += " quoting " + quote
	}
	return "msg-" + text, p.act(what, jid)
}

// fakeLaravel shows one QR code per session, changed by show.
type fakeLaravel struct {
	mu      sync.Mutex
	qr      map[string]string
	changed chan struct{}
}

func newFakeLaravel() *fakeLaravel {
	return &fakeLaravel{qr: map[string]string{}, changed: make(chan struct{})}
}

func (l *fakeLaravel) QR(id string) (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.qr[id], l.changed
}

func (l *fakeLaravel) show(id, qr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.qr[id] = qr
	close(l.changed)
	l.changed = make(chan struct{})
}

type testWorld struct{ env *user.Env }

func (w testWorld) Env() *user.Env { return w.env }
func (w testWorld) GroundTruth(context.Context) (reports.GroundTruth, error) {
	return reports.GroundTruth{}, nil
}

// fakeGateway answers the gateway API; sendStatus is the answer to message sends.
type fakeGateway struct {
	mu         sync.Mutex
	sendStatus int
	requests   []string
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+r.URL.Path)
	send := g.sendStatus
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/sessions":
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "pending"})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages"):
		w.WriteHeader(send)
		fmt.Fprint(w, `{"id":"m1"}`)
	case r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "connected"})
	case r.Method == http.MethodDelete:
		fmt.Fprint(w, `{}`)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

type fixture struct {
	d       *Driver
	reg     *metrics.Registry
	phone   *fakePhone
	laravel *fakeLaravel
	gateway *fakeGateway
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	gw := &fakeGateway{sendStatus: http.StatusAccepted}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	reg := metrics.NewRegistry(nil)
	phone := &fakePhone{reject: map[string]bool{}}
	laravel := newFakeLaravel()
	env := &user.Env{
		API: user.NewAPI(srv.URL, "token", srv.Client(), reg), Phone: phone, Laravel: laravel,
		Ledger: truth.NewLedger(reg, truth.QRTiming{First: time.Minute, Next: 20 * time.Second, Codes: 6}, nil),
		Reg:    reg, MessageTo: "15550100000", Messages: truth.NewMessages(),
	}
	return fixture{d: New(testWorld{env: env}, 0), reg: reg, phone: phone, laravel: laravel, gateway: gw}
}

var tags = metrics.Tags{"scenario": "s"}

func TestPairScansTheCodeLaravelShowsUntilOneIsAccepted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, err := f.d.StartSession(ctx, "", tags)
	if err != nil || s.ID == "" || s.Status != "pending" || s.HTTPStatus != http.StatusCreated {
		t.Fatalf("StartSession = %+v, %v", s, err)
	}
	f.phone.reject["qr-1"] = true
	go func() {
		time.Sleep(20 * time.Millisecond)
		f.laravel.show(s.ID, "qr-1")
		time.Sleep(20 * time.Millisecond)
		f.laravel.show(s.ID, "qr-2")
	}()
	p, err := f.d.Pair(ctx, s.ID, 5*time.Second, tags)
	if err != nil {
		t.Fatal(err)
	}
	if p.QR != "qr-2" || p.JID != s.Phone+"@s.whatsapp.net" || p.DurationMs <= 0 {
		t.Errorf("Pair = %+v", p)
	}
	if got := strings.Join(f.phone.scanned, ","); got != "qr-1,qr-2" {
		t.Errorf("the phone scanned %s, want the codes Laravel showed in order", got)
	}
	if f.reg.Total("wagate_pairings", nil) != 1 || f.reg.Total("wagate_sessions_started", metrics.Tags{"scenario": "s"}) != 1 {
		t.Errorf("pairings %v, sessions started %v", f.reg.Total("wagate_pairings", nil), f.reg.Total("wagate_sessions_started", nil))
	}
}

func TestPairGivesUpWhenLaravelShowsNoCode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, _ := f.d.StartSession(ctx, "quiet", tags)
	if _, err := f.d.Pair(ctx, s.ID, 50*time.Millisecond, tags); err == nil {
		t.Fatal("Pair succeeded without a QR code in Laravel")
	}
	if f.reg.Total("wagate_pairing_failures", nil) != 1 {
		t.Errorf("pairing failure not counted")
	}
}

func TestChurnOperationsNeedAStartedPairedSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.d.Drop(ctx, "nobody", tags); !errors.Is(err, ErrUnknownSession) {
		t.Errorf("Drop of an unknown session: %v", err)
	}
	s, _ := f.d.StartSession(ctx, "unpaired", tags)
	if err := f.d.Replace(ctx, s.ID, tags); err == nil || !strings.Contains(err.Error(), "not paired") {
		t.Errorf("Replace before pairing: %v", err)
	}
}

func TestChurnReachesThePhoneAndLogoutTheGateway(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, _ := f.d.StartSession(ctx, "churn", tags)
	f.laravel.show(s.ID, "qr")
	p, err := f.d.Pair(ctx, s.ID, time.Second, tags)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []func() error{
		func() error { return f.d.Drop(ctx, s.ID, tags) },
		func() error { return f.d.Replace(ctx, s.ID, tags) },
		func() error { return f.d.PhoneLogout(ctx, s.ID, tags) },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	want := "drop " + p.JID + ",replace " + p.JID + ",logout " + p.JID
	if got := strings.Join(f.phone.actions, ","); got != want {
		t.Errorf("phone actions %s, want %s", got, want)
	}
	code, err := f.d.Logout(ctx, s.ID, tags)
	if err != nil || code != http.StatusOK {
		t.Fatalf("Logout = %d, %v", code, err)
	}
	if f.reg.Total("wagate_logouts", metrics.Tags{"by": "app"}) != 1 || f.reg.Total("wagate_logouts", metrics.Tags{"by": "phone"}) != 1 {
		t.Errorf("logouts by app/phone not counted apart")
	}
	if f.reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointLogout}) != 1 {
		t.Errorf("the logout request was not measured as http_reqs{endpoint:logout}")
	}
}

func TestSendCountsOnlyAcceptedMessages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, _ := f.d.StartSession(ctx, "sender", tags)
	sent, err := f.d.Send(ctx, s.ID, "", "hello", tags)
	if err != nil || sent.HTTPStatus != http.StatusAccepted || sent.Body["id"] != "m1" {
		t.Fatalf("Send = %+v, %v", sent, err)
	}
	f.gateway.mu.Lock()
	f.gateway.sendStatus = http.StatusConflict
	f.gateway.mu.Unlock()
	if sent, err = f.d.Send(ctx, s.ID, "", "again", tags); err != nil || sent.HTTPStatus != http.StatusConflict {
		t.Fatalf("Send while reconnecting = %+v, %v", sent, err)
	}
	if got := f.reg.Total("wagate_messages_sent", nil); got != 1 {
		t.Errorf("wagate_messages_sent = %v, want 1 (the 409 is not a sent message)", got)
	}
	if st, err := f.d.Status(ctx, s.ID, tags); err != nil || st != "connected" {
		t.Errorf("Status = %q, %v", st, err)
	}
	if err := f.d.PollQR(ctx, s.ID, tags); err != nil {
		t.Errorf("PollQR: %v", err)
	}
	if got := f.reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointQR}); got != 1 {
		t.Errorf("http_reqs{endpoint:qr} = %v, want the QR poll measured once", got)
	}
}

func TestTheCustomerWritesToAPairedSessionAndTheGroundTruthExpectsIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s, _ := f.d.StartSession(ctx, "customer", tags)
	if _, err := f.d.Receive(ctx, s.ID, "too early", "", tags); err == nil || !strings.Contains(err.Error(), "not paired") {
		t.Errorf("Receive before pairing: %v", err)
	}
	f.laravel.show(s.ID, "qr")
	p, err := f.d.Pair(ctx, s.ID, time.Second, tags)
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.d.Receive(ctx, s.ID, "hi", "", tags)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Receive(ctx, s.ID, "again", first.ID, tags); err != nil {
		t.Fatal(err)
	}
	customer := user.CustomerPhone(s.Phone)
	if first.ID != "msg-hi" || first.From != customer {
		t.Errorf("Receive = %+v, want the message id fakewa gave and the customer %s", first, customer)
	}
	want := "write " + customer + " hi " + p.JID + ",write " + customer + " again quoting msg-hi " + p.JID
	if got := strings.Join(f.phone.actions, ","); got != want {
		t.Errorf("phone actions %s, want %s", got, want)
	}
	if n := f.d.env.Messages.WrittenCount(); n != 2 {
		t.Errorf("the ground truth holds %d written messages, want 2", n)
	}
	if got := f.reg.Total("wagate_messages_written", tags); got != 2 {
		t.Errorf("wagate_messages_written = %v, want 2", got)
	}
}
