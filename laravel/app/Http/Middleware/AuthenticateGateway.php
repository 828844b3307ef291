<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/**
 * Lets a request through only when it carries "Authorization: Bearer <token>" with the token of
 * config('wagate.token') (env WAGATE_TOKEN), compared in constant time. With no token configured
 * every request is refused: the endpoints are never open by accident.
 */
class AuthenticateGateway
{
    /**
     * @param  \Closure(\Illuminate\Http\Request): mixed  $next
     * @return mixed
     */
    public function handle(Request $request, Closure $next)
    {
        $expected = (string) config('wagate.token', '');
        $given = (string) $request->bearerToken();

        if ($expected === '' || $given === '' || ! hash_equals($expected, $given)) {
            return response()->json(['message' => 'Unauthenticated.'], 401, ['WWW-Authenticate' => 'Bearer']);
        }

        return $next($request);
    }
}
