<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/**
 * Lets a request through only when it carries "Authorization: Bearer <token>" with the token of
 * config('wagate.token') (env WAGATE_TOKEN), compared in constant time. During a rotation the old
 * token, config('wagate.previous_token') (env WAGATE_TOKEN_PREVIOUS), is accepted too. With no
 * token configured every request is refused: the endpoints are never open by accident.
 */
class AuthenticateGateway
{
    /**
     * @param  \Closure(\Illuminate\Http\Request): mixed  $next
     * @return mixed
     */
    public function handle(Request $request, Closure $next)
    {
        $given = (string) $request->bearerToken();
        $accepted = false;
        foreach ([config('wagate.token', ''), config('wagate.previous_token', '')] as $expected) {
            // Both are compared (no early exit), each in constant time.
            $expected = (string) $expected;
            $accepted = ($expected !== '' && $given !== '' && hash_equals($expected, $given)) || $accepted;
        }
        if (! $accepted || (string) config('wagate.token', '') === '') {
            return response()->json(['message' => 'Unauthenticated.'], 401, ['WWW-Authenticate' => 'Bearer']);
        }

        return $next($request);
    }
}
