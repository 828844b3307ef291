package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// An explicit start (POST /sessions) of a paired session whose connect fails because WhatsApp is
// unreachable for a moment is kept and retried in the background with a drop's backoff (1 s,
// doubling), as a restored session's first connect and a dropped connection are: the caller gets
// the session as it is (paired, not connected) instead of an error, and it connects once WhatsApp
// answers again. Before, the start returned the error and nothing retried it.
func TestAStartOfAPairedSessionWhoseConnectFailsIsKeptAndRetriedUntilItConnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, drv, sink := managerOnUnreachable(t)
		startAndScan(t, m, drv.Driver)
		if _, err := m.Stop(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		drv.down.Store(true)
		info, err := m.Start(context.Background(), "s1")
		if err != nil {
			t.Fatalf("start with WhatsApp unreachable: %v; want the session kept, connecting", err)
		}
		if info.Status != laravel.StatusDisconnected || info.Connected || !info.Paired {
			t.Fatalf("start answered %+v; want the session as it is: paired, disconnected", info)
		}
		synctest.Wait()
		if drv.Opens() != 2 {
			t.Fatalf("opens %d, want the pairing's and the start's", drv.Opens())
		}
		time.Sleep(3*time.Second + time.Millisecond) // 1 s, then 2 s: two retries that fail
		synctest.Wait()
		if drv.Opens() != 4 {
			t.Fatalf("opens %d after 3 s of failing retries, want 4", drv.Opens())
		}
		drv.down.Store(false)
		time.Sleep(4 * time.Second) // the next retry, 4 s after the last
		synctest.Wait()
		if info, _ := m.Get(context.Background(), "s1"); info.Status != laravel.StatusConnected || !info.Connected {
			t.Fatalf("after WhatsApp came back the session is %+v", info)
		}
		if got, want := sink.Of("s1"), []string{"status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
}

// loggedOutAtConnect's connections fail their connect the way a device unlinked while the gateway
// was away does: WhatsApp answers the login with a logout.
type loggedOutAtConnect struct{ *sessiontest.Driver }

type loggedOutConn struct{ *sessiontest.Conn }

func (d loggedOutAtConnect) Open(ctx context.Context, sessionID, deviceID string, handle func(session.DriverEvent) error) (session.Conn, error) {
	c, err := d.Driver.Open(ctx, sessionID, deviceID, handle)
	if err != nil || deviceID == "" {
		return c, err
	}
	return loggedOutConn{c.(*sessiontest.Conn)}, nil
}

func (c loggedOutConn) Connect(context.Context) error {
	_ = c.Emit(session.LoggedOut{Reason: "401: device removed"})
	return errors.New("logged out")
}

// What a failed start keeps retrying, and what it does not: only a paired session whose connect
// failed is kept (and answered as it is); a session that has no device, or whose device WhatsApp
// logged out while it connected, returns the error and nothing retries it.
func TestAFailedStartIsRetriedOnlyForAPairedSessionStillPaired(t *testing.T) {
	cases := []struct {
		name string
		// setup pairs (or not) s1 and arranges the next connect's failure; it returns the driver
		// whose opens count.
		setup       func(t *testing.T) (session.Driver, func() int, func(m *session.Manager))
		wantErr     bool
		wantRetries bool
		wantStatus  laravel.Status
	}{
		{
			name: "paired, WhatsApp unreachable: kept and retried",
			setup: func(t *testing.T) (session.Driver, func() int, func(m *session.Manager)) {
				drv := &unreachable{Driver: sessiontest.NewDriver()}
				return drv, drv.Opens, func(m *session.Manager) {
					pairThenStop(t, m, drv.Driver)
					drv.down.Store(true)
				}
			},
			wantRetries: true, wantStatus: laravel.StatusDisconnected,
		},
		{
			name: "paired, logged out while connecting: the error, no retry",
			setup: func(t *testing.T) (session.Driver, func() int, func(m *session.Manager)) {
				inner := sessiontest.NewDriver()
				drv := loggedOutAtConnect{inner}
				return drv, inner.Opens, func(m *session.Manager) { pairThenStop(t, m, inner) }
			},
			wantErr: true, wantStatus: laravel.StatusLoggedOut,
		},
		{
			name: "not paired, WhatsApp unreachable: the error, the QR flow expired, no retry",
			setup: func(t *testing.T) (session.Driver, func() int, func(m *session.Manager)) {
				drv := sessiontest.NewDriver()
				drv.ConnectErr = errors.New("dial refused")
				return drv, drv.Opens, func(*session.Manager) {}
			},
			wantErr: true, wantStatus: laravel.StatusExpired,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				drv, opens, arrange := c.setup(t)
				m, err := session.New(context.Background(), session.Config{}, drv, sessiontest.NewStore(), &sessiontest.Sink{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close(context.Background())
				arrange(m)
				before := opens()
				_, err = m.Start(context.Background(), "s1")
				if (err != nil) != c.wantErr {
					t.Fatalf("start: %v; want an error: %v", err, c.wantErr)
				}
				synctest.Wait()
				time.Sleep(time.Minute)
				synctest.Wait()
				if retried := opens() > before+1; retried != c.wantRetries {
					t.Fatalf("opens after the start's: %d; want retries: %v", opens()-before-1, c.wantRetries)
				}
				if info, _ := m.Get(context.Background(), "s1"); info.Status != c.wantStatus || info.Connected {
					t.Fatalf("session %+v; want %s, not connected", info, c.wantStatus)
				}
			})
		})
	}
}

// pairThenStop starts s1, has its QR scanned (it logs in) and stops it: a paired session.
func pairThenStop(t *testing.T, m *session.Manager, drv *sessiontest.Driver) {
	t.Helper()
	startAndScan(t, m, drv)
	if _, err := m.Stop(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
}
