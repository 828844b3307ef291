package processtest

import "testing"

// Redis on AOF restarts while no gateway runs and loses its last writes, not its older ones: with
// appendfsync everysec (Redis's default) a SIGKILL loses up to a second of writes, here made
// certain by turning the AOF off once the gateway's start was written, so the outbox marker comes
// back and the customers' messages appended since do not. The gateway had taken them (each
// receipted to WhatsApp, which never delivers it again) while Laravel was down, and was SIGKILLed
// before Redis restarted. Its next start finds Redis's run_id is not the one it recorded with its
// generation, takes the restart for a loss of the last writes, as a running gateway does, and
// appends the message journal again: Laravel stores every message once, each chat in order.
// Before the start compared runs, the intact marker said nothing was lost and every message was.
func TestMessagesReceiptedBeforeRedisRestartedLosingItsLastWritesWhileTheGatewayWasDownReachLaravel(t *testing.T) {
	h := startHarness(t, "gw-redis-restart-down", "WAGATE_MESSAGE_INTERVAL=200ms")
	rdb, kept := lastWritesLostFromNow(t, h)
	h.laravel.Kill()
	written := writeReceiptedMessages(t, h, "restart_down", "15558880400", []string{"5511977774001", "5511977774002"}, 8)
	h.gw.Kill()
	restartRedisLosingLastWrites(t, h, rdb, kept)
	t.Log("gateway SIGKILLed, redis-server SIGKILLed and restarted from its AOF: marker kept, the last writes lost")
	h.startGateway()
	h.startLaravel()
	checkEveryMessageOnceInOrder(t, h, "restart_down", written)
}
