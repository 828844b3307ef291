<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/**
 * Verifies the gateway's body signature when config('wagate.secret') (env WAGATE_SECRET) is set:
 *
 *   X-Wagate-Timestamp: <unix seconds>
 *   X-Wagate-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *
 * The timestamp must be within config('wagate.signature_skew') seconds (300) of this server's
 * clock, and the signature is compared in constant time. Failures answer 401. The signature
 * covers request bodies: GET and HEAD (the session lookup) are not checked, as in the contract's
 * conformance check. During a rotation a signature made with the old secret,
 * config('wagate.previous_secret') (env WAGATE_SECRET_PREVIOUS), is accepted too. Without a
 * secret the middleware does nothing.
 */
class VerifyGatewaySignature
{
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

        $timestamp = trim((string) $request->headers->get('X-Wagate-Timestamp', ''));
        $signature = trim((string) $request->headers->get('X-Wagate-Signature', ''));
        if ($timestamp === '' || $signature === '') {
            return $this->refuse('Missing request signature.');
        }
        if (! preg_match('/^-?[0-9]{1,19}$/', $timestamp)) {
            return $this->refuse('Invalid request signature.');
        }
        $ts = (int) $timestamp;
        if (abs(time() - $ts) > (int) config('wagate.signature_skew', 300)) {
            return $this->refuse('Request signature expired.');
        }

        $valid = false;
        foreach ([$secret, (string) config('wagate.previous_secret', '')] as $key) {
            if ($key !== '') {
                $expected = 'sha256='.hash_hmac('sha256', $ts.'.'.$request->getContent(), $key);
                $valid = hash_equals($expected, $signature) || $valid;
            }
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
