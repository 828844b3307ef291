<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/**
 * Marks every request as wanting JSON, so Laravel renders 401, 404, 405, 422 and 500 as JSON
 * bodies ({"message": ...}, plus "errors" for 422) even when the client sent no Accept header.
 */
class ForceJsonResponse
{
    /**
     * @param  \Closure(\Illuminate\Http\Request): mixed  $next
     * @return mixed
     */
    public function handle(Request $request, Closure $next)
    {
        $request->headers->set('Accept', 'application/json');

        return $next($request);
    }
}
