package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

type rig struct {
	t      *testing.T
	driver *sessiontest.Driver
	store  *sessiontest.Store
	sink   *sessiontest.Sink
	m      *session.Manager
}

func newRig(t *testing.T, cfg session.Config) *rig {
	t.Helper()
	r := &rig{t: t, driver: sessiontest.NewDriver(), store: sessiontest.NewStore(), sink: &sessiontest.Sink{}}
	r.m = r.manager(cfg)
	return r
}

func (r *rig) manager(cfg session.Config) *session.Manager {
	r.t.Helper()
	m, err := session.New(context.Background(), cfg, r.driver, r.store, r.sink)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rig) close() {
	r.t.Helper()
	if err := r.m.Close(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) start(id string) session.Info {
	r.t.Helper()
	info, err := r.m.Start(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
	return info
}

func (r *rig) info(id string) session.Info {
	r.t.Helper()
	info, err := r.m.Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return info
}

func (r *rig) wantEvents(id string, want ...string) {
	r.t.Helper()
	synctest.Wait()
	if got := r.sink.Of(id); !slices.Equal(got, want) {
		r.t.Fatalf("events of %s:\n got %q\nwant %q", id, got, want)
	}
}

// pairedRig returns a rig with session "s1" paired and connected.
func pairedRig(t *testing.T) (*rig, *sessiontest.Conn) {
	r := newRig(t, session.Config{})
	r.start("s1")
	c := r.driver.Conn("s1")
	c.Scan()
	synctest.Wait()
	return r, c
}

func TestUnpairedSessionRotatesSixCodesThenExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		t0 := time.Now()
		r.start("s1")
		info := r.info("s1")
		if info.Status != laravel.StatusPending || info.QR != "code-1" || !info.QRExpiresAt.Equal(t0.Add(60*time.Second)) {
			t.Fatalf("after start: %+v", info)
		}
		r.wantEvents("s1", "status:pending", "qr:code-1")

		time.Sleep(60*time.Second - time.Millisecond)
		synctest.Wait()
		if r.info("s1").QR != "code-1" {
			t.Fatal("first code replaced before 60 s")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if info := r.info("s1"); info.QR != "code-2" || !info.QRExpiresAt.Equal(t0.Add(80*time.Second)) {
			t.Fatalf("at 60 s: %+v", info)
		}
		time.Sleep(4 * 20 * time.Second) // codes 3..6
		synctest.Wait()
		if info := r.info("s1"); info.QR != "code-6" || info.Status != laravel.StatusPending {
			t.Fatalf("at 140 s: %+v", info)
		}
		time.Sleep(20 * time.Second)
		r.wantEvents("s1", "status:pending", "qr:code-1", "qr:code-2", "qr:code-3", "qr:code-4", "qr:code-5", "qr:code-6", "status:expired")
		info = r.info("s1")
		if info.Status != laravel.StatusExpired || info.QR != "" || !info.QRExpiresAt.IsZero() {
			t.Fatalf("after 160 s: %+v", info)
		}
		if !r.driver.Conn("s1").Released() {
			t.Fatal("an expired QR flow kept its connection")
		}
	})
}

func TestQRTimingIsConfigurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{QRFirst: 5 * time.Second, QRNext: 2 * time.Second, QRCodes: 3})
		defer r.close()
		r.start("s1")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if r.info("s1").QR != "code-2" {
			t.Fatalf("at 5 s: %+v", r.info("s1"))
		}
		time.Sleep(4 * time.Second)
		r.wantEvents("s1", "status:pending", "qr:code-1", "qr:code-2", "qr:code-3", "status:expired")
	})
}

func TestQRSkipsACodeIdenticalToTheCurrentOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		r.driver.Codes = []string{"a", "a", "b"}
		defer r.close()
		r.start("s1")
		time.Sleep(60 * time.Second)
		synctest.Wait()
		if r.info("s1").QR != "b" {
			t.Fatalf("duplicate not skipped: %+v", r.info("s1"))
		}
		// The server offering the same codes again while "b" shows changes nothing visible.
		r.driver.Conn("s1").Emit(session.QRCodes{Codes: []string{"b", "c"}})
		synctest.Wait()
		if r.info("s1").QR != "b" {
			t.Fatalf("a new batch replaced the current code early: %+v", r.info("s1"))
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		time.Sleep(20 * time.Second)
		r.wantEvents("s1", "status:pending", "qr:a", "qr:b", "qr:c", "status:expired")
	})
}

func TestScanPairsAndConnectsWithHighPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		info := r.info("s1")
		if info.Status != laravel.StatusConnected || !info.Paired || !info.Connected || info.QR != "" {
			t.Fatalf("after scan: %+v", info)
		}
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
		evs := r.sink.Events()
		if last := evs[len(evs)-1]; last.Priority != event.PriorityHigh {
			t.Fatalf("connected has priority %v", last.Priority)
		}
		if evs[0].Priority != event.PriorityNormal || evs[1].Priority != event.PriorityNormal {
			t.Fatal("pending and QR events must be normal priority")
		}
		rec, _ := r.store.Record("s1")
		if rec.DeviceJID != c.DeviceID() || rec.Status != laravel.StatusConnected {
			t.Fatalf("registry has %+v", rec)
		}
		// The QR timer is gone: nothing more happens.
		time.Sleep(10 * time.Minute)
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
	})
}

func TestAPairedDeviceThatNeverLogsInIsReconnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1")
		first := r.driver.Conn("s1")
		dev := first.ScanWithoutLogin()
		time.Sleep(20*time.Second - time.Millisecond)
		synctest.Wait()
		if r.driver.Opens() != 1 {
			t.Fatal("reconnected before the login timeout")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if r.driver.Opens() != 2 || !first.Released() {
			t.Fatalf("opens %d, first released %v", r.driver.Opens(), first.Released())
		}
		if c := r.driver.Conn("s1"); c.DeviceID() != dev {
			t.Fatalf("reconnected with device %q, want %q", c.DeviceID(), dev)
		}
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
	})
}

// unreachable is a driver whose connections fail to connect while down is set (WhatsApp
// unreachable for a moment).
type unreachable struct {
	*sessiontest.Driver
	down atomic.Bool
}

type unreachableConn struct {
	session.Conn
	d *unreachable
}

func (d *unreachable) Open(ctx context.Context, sessionID, deviceID string, handle func(session.DriverEvent) error) (session.Conn, error) {
	c, err := d.Driver.Open(ctx, sessionID, deviceID, handle)
	if err != nil {
		return nil, err
	}
	return unreachableConn{Conn: c, d: d}, nil
}

func (c unreachableConn) Connect(ctx context.Context) error {
	if c.d.down.Load() {
		return errors.New("handshake timed out")
	}
	return c.Conn.Connect(ctx)
}

// managerOnUnreachable is a session manager (default settings, an in-memory store) on a driver
// that can be made unreachable, and the sink its events go to; closed when the test ends.
func managerOnUnreachable(t *testing.T) (*session.Manager, *unreachable, *sessiontest.Sink) {
	t.Helper()
	drv := &unreachable{Driver: sessiontest.NewDriver()}
	sink := &sessiontest.Sink{}
	m, err := session.New(context.Background(), session.Config{}, drv, sessiontest.NewStore(), sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, drv, sink
}

// startAndScan starts s1 and has its QR code scanned: the device is paired and logged in.
func startAndScan(t *testing.T, m *session.Manager, drv *sessiontest.Driver) {
	t.Helper()
	if _, err := m.Start(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	drv.Conn("s1").Scan()
	synctest.Wait()
}

// A freshly paired device whose reconnect after the login timeout fails (WhatsApp unreachable for
// a moment) is reconnected again until it logs in: nothing else retries a connection that never
// came up, and it stayed pending, paired and unconnected for good.
func TestAPairedDeviceWhoseReconnectFailsIsRetriedUntilItLogsIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, drv, sink := managerOnUnreachable(t)
		if _, err := m.Start(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		drv.Conn("s1").ScanWithoutLogin()
		drv.down.Store(true)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if drv.Opens() != 2 {
			t.Fatalf("opens %d, want the reconnect after the login timeout", drv.Opens())
		}
		time.Sleep(3 * time.Second) // 1 s, then 2 s: two more attempts that fail
		synctest.Wait()
		if drv.Opens() != 4 {
			t.Fatalf("opens %d after 3 s of failing reconnects, want 4", drv.Opens())
		}
		drv.down.Store(false)
		time.Sleep(5 * time.Second) // the next attempt, 4 s after the last
		synctest.Wait()
		if info, _ := m.Get(context.Background(), "s1"); info.Status != laravel.StatusConnected || !info.Connected {
			t.Fatalf("after WhatsApp came back the session is %+v", info)
		}
		if got, want := sink.Of("s1"), []string{"status:pending", "qr:code-1", "status:connected"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
}

// slowClose is a connection whose Disconnect takes a second, as a whatsmeow client's can while it
// is still dialing; closed is closed when it finished closing.
type slowClose struct {
	session.Conn
	closed chan struct{}
}

func (c *slowClose) Disconnect() {
	time.Sleep(time.Second)
	c.Conn.Disconnect()
	close(c.closed)
}

// slowCloseDriver opens slowClose connections and records, for every Open, whether the session's
// previous connection had finished closing.
type slowCloseDriver struct {
	*sessiontest.Driver
	last          *slowClose
	openedOverOld int
}

func (d *slowCloseDriver) Open(ctx context.Context, sessionID, deviceID string, handle func(session.DriverEvent) error) (session.Conn, error) {
	if d.last != nil {
		select {
		case <-d.last.closed:
		default:
			d.openedOverOld++
		}
	}
	c, err := d.Driver.Open(ctx, sessionID, deviceID, handle)
	if err != nil {
		return nil, err
	}
	d.last = &slowClose{Conn: c, closed: make(chan struct{})}
	return d.last, nil
}

// The stalled connection of a paired device that did not log in is closed before the new one
// opens: a stalled whatsmeow client still logging in could otherwise log in after the new
// connection and take the device over from it (the session was then parked as replaced).
func TestAStalledLoginIsClosedBeforeTheReconnectOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drv := &slowCloseDriver{Driver: sessiontest.NewDriver()}
		m, err := session.New(context.Background(), session.Config{}, drv, sessiontest.NewStore(), &sessiontest.Sink{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		if _, err := m.Start(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		drv.Conn("s1").ScanWithoutLogin()
		time.Sleep(25 * time.Second)
		synctest.Wait()
		if drv.Opens() != 2 || drv.openedOverOld != 0 {
			t.Fatalf("opens %d, %d of them while the stalled connection was still open", drv.Opens(), drv.openedOverOld)
		}
		if info, _ := m.Get(context.Background(), "s1"); info.Status != laravel.StatusConnected {
			t.Fatalf("after the reconnect the session is %+v", info)
		}
	})
}

func TestVersionsIncreaseAndEventsAreValid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		c.Drop()
		synctest.Wait()
		var last int64
		for _, ev := range r.sink.Events() {
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			if ev.Version <= last {
				t.Fatalf("version %d after %d", ev.Version, last)
			}
			last = ev.Version
		}
		if r.info("s1").Version != last {
			t.Fatalf("info version %d, last event %d", r.info("s1").Version, last)
		}
	})
}

// A dropped connection is never reconnected on the same whatsmeow client (its reconnect ran a
// second handler loop on the client's one queue, and a session's messages were numbered out of
// order): the session releases it and connects a new one, in single-process mode as in cluster
// mode. The old connection's late events change nothing.
func TestADropIsReconnectedWithANewConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		c.DropAndStayDown()
		synctest.Wait()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected")
		if r.driver.Opens() != 2 || !c.Released() {
			t.Fatalf("opens %d, old connection released %v: want a new connection and the old one released", r.driver.Opens(), c.Released())
		}
		next := r.driver.Conn("s1")
		if next == c || !next.LoggedIn() || next.DeviceID() != c.DeviceID() {
			t.Fatal("the session did not reconnect its device on a new connection")
		}
		c.Emit(session.Disconnected{}) // late, from the released connection
		synctest.Wait()
		if info := r.info("s1"); info.Status != laravel.StatusConnected || !info.Connected {
			t.Fatalf("a late event of the old connection changed the session: %+v", info)
		}
	})
}

// A Disconnected dispatched after a Connected of the same connection (whatsmeow dispatches it
// from a goroutine of its own) still ends connected: the session reconnects on a new connection.
func TestDisconnectedArrivingAfterConnectedStillEndsConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		c.Emit(session.Connected{})
		c.Emit(session.Disconnected{})
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected")
		if r.info("s1").Status != laravel.StatusConnected {
			t.Fatal("final status is not connected")
		}
	})
}

// A drop while WhatsApp cannot be reached leaves the session disconnected and paired; the session
// layer tries again after 0 s, 1 s, 2 s, 4 s... and reconnects once WhatsApp is back (the
// single-process mode had whatsmeow's reconnect loop for this).
func TestADropWhileWhatsAppIsUnreachableIsRetriedWithBackoffUntilItReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, drv, sink := managerOnUnreachable(t)
		startAndScan(t, m, drv.Driver)
		drv.down.Store(true)
		drv.Conn("s1").DropAndStayDown()
		synctest.Wait()
		if info, _ := m.Get(context.Background(), "s1"); info.Status != laravel.StatusDisconnected || info.Connected || !info.Paired {
			t.Fatalf("after a drop with WhatsApp unreachable: %+v", info)
		}
		if drv.Opens() != 2 {
			t.Fatalf("opens %d, want the first connection and one reconnect at once", drv.Opens())
		}
		time.Sleep(3*time.Second + time.Millisecond) // 1 s, then 2 s: two more attempts that fail
		synctest.Wait()
		if drv.Opens() != 4 {
			t.Fatalf("opens %d after 3 s of failing reconnects, want 4", drv.Opens())
		}
		drv.down.Store(false)
		time.Sleep(4 * time.Second) // the next attempt, 4 s after the last
		synctest.Wait()
		if info, _ := m.Get(context.Background(), "s1"); info.Status != laravel.StatusConnected || !info.Connected {
			t.Fatalf("after WhatsApp came back the session is %+v", info)
		}
		if got, want := sink.Of("s1"), []string{"status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
}

func TestStreamReplacedIsReportedAndNotFoughtOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		c.Replace()
		synctest.Wait()
		time.Sleep(time.Hour)
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected")
		if r.driver.Opens() != 1 || !c.Released() {
			t.Fatalf("opens %d released %v: the gateway must not reconnect a replaced stream", r.driver.Opens(), c.Released())
		}
		if !r.info("s1").Paired {
			t.Fatal("a replaced stream does not unpair the device")
		}
		// An explicit start takes the device back.
		r.start("s1")
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected")
	})
}

// A session the gateway stopped reconnecting (another client took its device over, or WhatsApp
// refused it for good) stays stopped across a restart, even a crash: a restore that took the
// device back would fight the other client and report `connected` for a session Laravel was told
// is `disconnected` (found by the ground truth after a SIGKILL in a churn run). An explicit start
// still takes it back.
func TestAParkedSessionStaysParkedAcrossARestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		park func(c *sessiontest.Conn)
	}{
		{"stream replaced", func(c *sessiontest.Conn) { c.Replace() }},
		{"connection refused for good", func(c *sessiontest.Conn) { c.Emit(session.ConnectFailed{Reason: "temporary ban"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, c := pairedRig(t)
				tc.park(c)
				synctest.Wait()
				r.stopIdleAndClose()
				opensBefore := r.driver.Opens()
				r.sink = &sessiontest.Sink{} // this run's events only

				time.Sleep(time.Second)
				r.m = r.manager(session.Config{ResyncRestored: true})
				defer r.close()
				if err := r.m.Restore(context.Background()); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				time.Sleep(time.Hour)
				if n := r.driver.Opens() - opensBefore; n != 0 {
					t.Fatalf("the restore opened %d connections for a parked session, want 0", n)
				}
				info := r.info("s1")
				if info.Status != laravel.StatusDisconnected || !info.Paired || info.Connected {
					t.Fatalf("parked session after the restart: %+v", info)
				}
				// After a crash its status is sent again (with a new version), as for idle sessions.
				r.wantEvents("s1", "status:disconnected")

				r.start("s1")
				r.wantEvents("s1", "status:disconnected", "status:connected")
				// Taken back: the next restart reconnects it.
				r.stopIdleAndClose()
				r.m = r.manager(session.Config{})
				if err := r.m.Restore(context.Background()); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if info := r.info("s1"); info.Status != laravel.StatusConnected {
					t.Fatalf("a session started again after parking must reconnect at the next restart: %+v", info)
				}
			})
		})
	}
}

func TestLogoutUnlinksAndReportsLoggedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		dev := c.DeviceID()
		info, err := r.m.Logout(context.Background(), "s1")
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != laravel.StatusLoggedOut || info.Paired || info.Connected {
			t.Fatalf("after logout: %+v", info)
		}
		if c.Logouts() != 1 || r.driver.HasDevice(dev) || !c.Released() {
			t.Fatalf("logouts %d device kept %v released %v", c.Logouts(), r.driver.HasDevice(dev), c.Released())
		}
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:logged_out")
		if evs := r.sink.Events(); evs[len(evs)-1].Priority != event.PriorityHigh {
			t.Fatal("logged_out must be high priority")
		}
		// Starting again pairs a new device.
		r.start("s1")
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:logged_out", "status:pending", "qr:code-1")
	})
}

// A logout is answered logged_out only once the record saying so (no device) is stored: a process
// killed right after the answer, its device data left behind by a delete that failed or never ran,
// must not bring the device back at its next start (the restore reads the stored records). When
// the record cannot be stored, the logout is not acknowledged: a retry records it.
func TestALogoutIsAnsweredOnlyOnceItsRecordIsStored(t *testing.T) {
	t.Run("stored before the answer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, _ := pairedRig(t)
			defer r.close()
			if _, err := r.m.Logout(context.Background(), "s1"); err != nil {
				t.Fatal(err)
			}
			rec, ok := r.store.Durable("s1")
			if !ok || rec.DeviceJID != "" || rec.Status != laravel.StatusLoggedOut {
				t.Fatalf("stored at the answer: %+v (found %v), want no device and logged_out", rec, ok)
			}
		})
	})
	t.Run("not acknowledged when it cannot be stored, recorded by a retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, _ := pairedRig(t)
			defer r.close()
			r.store.FailFlushes(errors.New("disk full"))
			if _, err := r.m.Logout(context.Background(), "s1"); err == nil {
				t.Fatal("a logout whose record could not be stored was acknowledged")
			}
			r.store.FailFlushes(nil)
			info, err := r.m.Logout(context.Background(), "s1")
			if err != nil || info.Status != laravel.StatusLoggedOut {
				t.Fatalf("the retry: %+v, %v", info, err)
			}
			if rec, _ := r.store.Durable("s1"); rec.DeviceJID != "" || rec.Status != laravel.StatusLoggedOut {
				t.Fatalf("stored after the retry: %+v", rec)
			}
		})
	})
}

func TestLogoutWhileDisconnectedForgetsTheDeviceLocally(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		dev := c.DeviceID()
		c.DropAndStayDown()
		synctest.Wait()
		if _, err := r.m.Logout(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		if r.driver.HasDevice(dev) || r.info("s1").Status != laravel.StatusLoggedOut {
			t.Fatal("device kept or status not logged_out")
		}
	})
}

func TestUnlinkFromThePhoneReportsLoggedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		c.UnlinkFromPhone()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:logged_out")
		if info := r.info("s1"); info.Paired {
			t.Fatalf("%+v", info)
		}
		rec, _ := r.store.Record("s1")
		if rec.DeviceJID != "" {
			t.Fatal("registry still links the removed device")
		}
	})
}

func TestPendingSessionLoggedOutBeforeScanExpiresItsFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1")
		if _, err := r.m.Logout(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:logged_out")
	})
}

func TestUnpairedSocketClosedByServerExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1")
		r.driver.Conn("s1").Emit(session.Disconnected{})
		time.Sleep(10 * time.Minute)
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:expired")
	})
}

func TestStartIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1")
		r.start("s1")
		if r.driver.Opens() != 1 {
			t.Fatalf("%d connections opened", r.driver.Opens())
		}
		r.wantEvents("s1", "status:pending", "qr:code-1")
	})
}

func TestStartAfterExpiryBeginsANewFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{QRCodes: 1})
		defer r.close()
		r.start("s1")
		time.Sleep(60 * time.Second)
		synctest.Wait()
		r.start("s1")
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:expired", "status:pending", "qr:code-1")
	})
}

func TestConnectFailureExpiresTheFlowAndReturnsTheError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.driver.ConnectErr = errors.New("dial refused")
		if _, err := r.m.Start(context.Background(), "s1"); err == nil {
			t.Fatal("start succeeded without a connection")
		}
		r.wantEvents("s1", "status:pending", "status:expired")
	})
}

func TestInvalidAndUnknownSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		for _, id := range []string{"", "a b", "../x", string(make([]byte, 65))} {
			if _, err := r.m.Start(context.Background(), id); !errors.Is(err, session.ErrInvalidID) {
				t.Errorf("Start(%q): %v", id, err)
			}
		}
		if _, err := r.m.Get(context.Background(), "nope"); !errors.Is(err, session.ErrNotFound) {
			t.Error(err)
		}
		if _, err := r.m.Logout(context.Background(), "nope"); !errors.Is(err, session.ErrNotFound) {
			t.Error(err)
		}
		if _, err := r.m.SendText(context.Background(), "nope", session.OutgoingText{Phone: "1555", Text: "x"}); !errors.Is(err, session.ErrNotFound) {
			t.Error(err)
		}
	})
}

func TestSendTextNeedsALiveConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1")
		if _, err := r.m.SendText(context.Background(), "s1", session.OutgoingText{Phone: "15550001111", Text: "hi"}); !errors.Is(err, session.ErrNotConnected) {
			t.Fatalf("pending session sent: %v", err)
		}
		c := r.driver.Conn("s1")
		c.Scan()
		synctest.Wait()
		id, err := r.m.SendText(context.Background(), "s1", session.OutgoingText{Phone: "15550001111", Text: "hi"})
		if err != nil || id == "" {
			t.Fatalf("id %q err %v", id, err)
		}
		if got := c.Sent(); !slices.Equal(got, []string{"15550001111:hi"}) {
			t.Fatalf("sent %q", got)
		}
	})
}

func TestListPaginatesInIDOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		for _, id := range []string{"c", "a", "e", "b", "d"} {
			r.start(id)
		}
		var got []string
		cursor := ""
		for range 10 {
			page, next, err := r.m.List(context.Background(), cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range page {
				got = append(got, in.SessionID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
			t.Fatalf("pages gave %q", got)
		}
		counts, live := r.m.Counts()
		if counts[laravel.StatusPending] != 5 || live != 0 {
			t.Fatalf("counts %v live %d", counts, live)
		}
	})
}

func TestEventsReachTheDeliveryInOrderWithoutBlockingTheClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		r.sink.Block = make(chan struct{})
		r.start("s1")
		c := r.driver.Conn("s1")
		c.Scan() // handlers return although the delivery is stuck
		c.DropAndStayDown()
		synctest.Wait()
		r.driver.Conn("s1").DropAndStayDown() // the reconnect's connection drops too
		synctest.Wait()
		if len(r.sink.Events()) != 0 {
			t.Fatal("delivery was not blocked")
		}
		close(r.sink.Block)
		// code-1, queued behind the stuck pending, is superseded by connected: dropped, not late.
		r.wantEvents("s1", "status:pending", "status:connected",
			"status:disconnected", "status:connected", "status:disconnected", "status:connected")
		r.close()
	})
}

func TestAFullQueueDropsOldQRCodesNeverStatuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dropped []string
		r := newRig(t, session.Config{MaxQueuedEvents: 3, QRFirst: time.Second, QRNext: time.Second,
			Hooks: session.Hooks{EventDropped: func(ev event.Event, reason string) { dropped = append(dropped, ev.Payload+"/"+reason) }}})
		r.sink.Block = make(chan struct{})
		r.start("s1")
		time.Sleep(6 * time.Second) // six codes, then expired, all queued behind a stuck delivery
		synctest.Wait()
		close(r.sink.Block)
		synctest.Wait()
		// The drainer had already taken "status:pending" when the queue filled up. The codes left
		// in the queue are superseded by what follows them (code-6, then expired): dropped, never
		// delivered late.
		r.wantEvents("s1", "status:pending", "status:expired")
		if !slices.Equal(dropped, []string{"code-1/queue_full", "code-2/queue_full", "code-3/queue_full", "code-4/queue_full",
			"code-5/" + session.DroppedSuperseded, "code-6/" + session.DroppedSuperseded}) {
			t.Fatalf("dropped %q", dropped)
		}
		r.close()
	})
}

func TestDeliveryFailuresAreCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failures := 0
		r := newRig(t, session.Config{Hooks: session.Hooks{DeliveryFailed: func(event.Event, error) { failures++ }}})
		defer r.close()
		r.sink.Err = errors.New("laravel down")
		r.start("s1")
		synctest.Wait()
		if failures != 2 {
			t.Fatalf("%d failures counted, want 2", failures)
		}
	})
}

func TestCloseDisconnectsWithoutEventsAndKeepsDevicesPaired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		before := len(r.sink.Events())
		r.close()
		if !c.Released() || c.LoggedIn() || c.Logouts() != 0 || !r.driver.HasDevice(c.DeviceID()) {
			t.Fatal("close must disconnect without logging out")
		}
		if len(r.sink.Events()) != before {
			t.Fatal("close emitted events")
		}
		if _, err := r.m.Start(context.Background(), "s2"); !errors.Is(err, session.ErrClosed) {
			t.Fatalf("start after close: %v", err)
		}
	})
}

// stopIdleAndClose starts and stops a session "idle" (it ends expired, unpaired), closes the
// manager as a stop would, and returns the highest event version of each session so far.
func (r *rig) stopIdleAndClose() map[string]int64 {
	r.t.Helper()
	r.start("idle")
	if _, err := r.m.Stop(context.Background(), "idle"); err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
	maxBefore := map[string]int64{}
	for _, ev := range r.sink.Events() {
		maxBefore[ev.SessionID] = max(maxBefore[ev.SessionID], ev.Version)
	}
	r.close()
	return maxBefore
}

func TestRestartReconnectsPairedSessionsExpiresPendingAndKeepsVersionsMonotonic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		dev := c.DeviceID()
		r.start("pending1")
		maxBefore := r.stopIdleAndClose()
		opensBefore := r.driver.Opens()

		time.Sleep(time.Second)
		r.m = r.manager(session.Config{})
		defer r.close()
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r.m.Restoring() != 0 {
			t.Fatalf("still restoring %d", r.m.Restoring())
		}
		if r.driver.Opens() != opensBefore+1 {
			t.Fatalf("restart opened %d connections, want 1 (the paired session only)", r.driver.Opens()-opensBefore)
		}
		if got := r.driver.Conn("s1"); got == c || got.DeviceID() != dev || !got.LoggedIn() {
			t.Fatal("paired session did not reconnect with its device")
		}
		info := r.info("s1")
		if info.Status != laravel.StatusConnected || !info.Connected {
			t.Fatalf("s1 after restart: %+v", info)
		}
		if info := r.info("pending1"); info.Status != laravel.StatusExpired {
			t.Fatalf("a QR flow interrupted by the restart must expire: %+v", info)
		}
		if info := r.info("idle"); info.Status != laravel.StatusExpired {
			t.Fatalf("idle: %+v", info)
		}
		r.wantEvents("pending1", "status:pending", "qr:code-1", "status:expired")
		// Connected -> (restart) -> connected is no change: no event flood on a rolling restart.
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")

		r.driver.Conn("s1").Drop()
		synctest.Wait()
		for _, ev := range r.sink.Events() {
			if ev.Time.After(time.Now().Add(-500*time.Millisecond)) && ev.Version <= maxBefore[ev.SessionID] {
				t.Fatalf("event %s version %d not above the previous run's %d", ev.ID, ev.Version, maxBefore[ev.SessionID])
			}
		}
	})
}

// After a crash the registry may hold a status whose event never reached the delivery; a restore
// told so sends every status again, with versions above the previous run's.
func TestRestoreAfterACrashSendsEveryStatusAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := pairedRig(t)
		maxBefore := r.stopIdleAndClose()
		r.sink = &sessiontest.Sink{} // this run's events only

		time.Sleep(time.Second)
		r.m = r.manager(session.Config{ResyncRestored: true})
		defer r.close()
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// The unpaired session at once; the paired one once its reconnect settled.
		r.wantEvents("idle", "status:expired")
		r.wantEvents("s1", "status:connected")
		for _, ev := range r.sink.Events() {
			if ev.Version <= maxBefore[ev.SessionID] {
				t.Fatalf("resent %s at version %d, not above the previous run's %d", ev.ID, ev.Version, maxBefore[ev.SessionID])
			}
		}
		// Only once: a later reconnect to the same status is no change again.
		r.driver.Conn("s1").Drop()
		synctest.Wait()
		r.wantEvents("s1", "status:connected", "status:disconnected", "status:connected")
	})
}

func TestRestoreLeavesSessionsStartedMeanwhileAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1") // a request that raced the restore
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if info := r.info("s1"); info.Status != laravel.StatusPending || info.QR == "" {
			t.Fatalf("restore touched a live session: %+v", info)
		}
	})
}

func TestRestoreOfAPairedSessionWhoseDeviceIsGoneReportsLoggedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		r.close()
		r.driver.RemoveDevice(c.DeviceID())
		r.m = r.manager(session.Config{})
		defer r.close()
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if info := r.info("s1"); info.Status != laravel.StatusLoggedOut || info.Paired {
			t.Fatalf("%+v", info)
		}
	})
}

func TestManySessionsRestoreWithBoundedConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		const n = 200
		for i := range n {
			id := fmt.Sprintf("s%03d", i)
			r.start(id)
			r.driver.Conn(id).Scan()
		}
		synctest.Wait()
		r.close()
		r.m = r.manager(session.Config{RestoreConcurrency: 4})
		defer r.close()
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, live := r.m.Counts(); live != n {
			t.Fatalf("%d of %d sessions live after restore", live, n)
		}
	})
}
