<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\DB;

/**
 * Verifies the gateway's request signature when config('wagate.secret') (env WAGATE_SECRET) is
 * set. The gateway sends two signatures on every request (gateway/laravel/signature.go):
 *
 *   X-Wagate-Timestamp:    <unix seconds>
 *   X-Wagate-Signature:    sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>        (v1)
 *   X-Wagate-Nonce:        <16 to 64 characters of [A-Za-z0-9_-], fresh for every attempt>
 *   X-Wagate-Signature-V2: sha256=<hex HMAC-SHA256(secret, canonical string)>                 (v2)
 *
 * The v2 canonical string is six lines joined by "\n":
 *   "v2", the method, the request target (path and query as on the request line), the
 *   Idempotency-Key (empty line when absent), the timestamp, the nonce, hex(SHA-256(raw body)).
 *
 * When X-Wagate-Signature-V2 is present, only v2 is checked; a valid v2 signature is remembered
 * (table wagate_signature_replays) until its timestamp leaves the window, and the same signature
 * again is refused as a replay. Without it, v1 is checked, unless config('wagate.require_signature_v2')
 * (env WAGATE_REQUIRE_SIGNATURE_V2) is true: then the request is refused. v1 cannot detect a
 * replay, nor a replay under another path; turn require_signature_v2 on once every gateway sends v2.
 *
 * The timestamp must be within config('wagate.signature_skew') seconds (300) of this server's
 * clock; signatures are compared in constant time; failures answer 401. GET and HEAD (the session
 * lookup) are not checked, as in the contract's conformance check. During a secret rotation a
 * signature made with config('wagate.previous_secret') (env WAGATE_SECRET_PREVIOUS) is accepted
 * too. Without a secret the middleware does nothing.
 */
class VerifyGatewaySignature
{
    /** @var string the replay table (database/migrations) */
    private const REPLAYS = 'wagate_signature_replays';

    /**
     * @param  \Closure(\Illuminate\Http\Request): mixed  $next
     * @return mixed
     */
    public function handle(Request $request, Closure $next)
    {
        $secret = (string) config('wagate.secret', '');
        if ($secret === '' || $request->isMethodSafe()) {
            return $next($request);
        }
        $secrets = array_values(array_filter([$secret, (string) config('wagate.previous_secret', '')], 'strlen'));
        $skew = (int) config('wagate.signature_skew', 300);

        $timestamp = trim((string) $request->headers->get('X-Wagate-Timestamp', ''));
        $signatureV2 = trim((string) $request->headers->get('X-Wagate-Signature-V2', ''));
        if ($signatureV2 === '') {
            if ((bool) config('wagate.require_signature_v2', false)) {
                return $this->refuse('A v2 request signature (X-Wagate-Signature-V2) is required.');
            }

            return $this->verifyV1($request, $next, $secrets, $timestamp, $skew);
        }

        $nonce = trim((string) $request->headers->get('X-Wagate-Nonce', ''));
        if ($timestamp === '' || $nonce === '') {
            return $this->refuse('Missing request signature.');
        }
        if (! preg_match('/^-?[0-9]{1,19}$/', $timestamp) || ! preg_match('/^[A-Za-z0-9_-]{16,64}$/', $nonce)) {
            return $this->refuse('Invalid request signature.');
        }
        $ts = (int) $timestamp;
        if (abs(time() - $ts) > $skew) {
            return $this->refuse('Request signature expired.');
        }

        $canonical = implode("\n", [
            'v2',
            $request->getRealMethod(), // not an _method override
            $request->getRequestUri(),
            (string) $request->headers->get('Idempotency-Key', ''),
            (string) $ts,
            $nonce,
            hash('sha256', $request->getContent()),
        ]);
        $valid = false;
        foreach ($secrets as $key) {
            // Every secret is tried, so the time taken does not say which one matched.
            $valid = hash_equals('sha256='.hash_hmac('sha256', $canonical, $key), $signatureV2) || $valid;
        }
        if (! $valid) {
            return $this->refuse('Invalid request signature.');
        }

        // Remember the signature until its timestamp leaves the window; a second request with
        // it is a replay. insertOrIgnore is atomic: of two concurrent copies, one inserts 0 rows.
        // (A held row cannot have expired: the timestamp is signed, so the same signature has
        // the same timestamp, which the window check above already let through.)
        $now = time();
        if (random_int(1, 100) === 1) {
            DB::table(self::REPLAYS)->where('expires_at', '<', $now)->delete();
        }
        $fresh = DB::table(self::REPLAYS)->insertOrIgnore([
            'signature' => substr($signatureV2, strlen('sha256=')),
            'expires_at' => $ts + $skew + 1,
        ]);
        if ($fresh === 0) {
            return $this->refuse('Replayed request signature.');
        }

        return $next($request);
    }

    /**
     * @param  list<string>  $secrets
     * @return mixed
     */
    private function verifyV1(Request $request, Closure $next, array $secrets, string $timestamp, int $skew)
    {
        $signature = trim((string) $request->headers->get('X-Wagate-Signature', ''));
        if ($timestamp === '' || $signature === '') {
            return $this->refuse('Missing request signature.');
        }
        if (! preg_match('/^-?[0-9]{1,19}$/', $timestamp)) {
            return $this->refuse('Invalid request signature.');
        }
        $ts = (int) $timestamp;
        if (abs(time() - $ts) > $skew) {
            return $this->refuse('Request signature expired.');
        }

        $valid = false;
        foreach ($secrets as $key) {
            $expected = 'sha256='.hash_hmac('sha256', $ts.'.'.$request->getContent(), $key);
            $valid = hash_equals($expected, $signature) || $valid;
        }
        if (! $valid) {
            return $this->refuse('Invalid request signature.');
        }

        return $next($request);
    }

    private function refuse(string $message)
    {
        return response()->json(['message' => $message], 401);
    }
}
