<?php

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/**
 * Answers 413 {"message": ...} when the request body is larger than config('wagate.max_body_bytes')
 * (1 MiB by the contract). Put the same limit in front of PHP as well (nginx client_max_body_size 1m)
 * so oversized bodies never reach PHP-FPM.
 */
class LimitRequestBody
{
    /**
     * @param  \Closure(\Illuminate\Http\Request): mixed  $next
     * @return mixed
     */
    public function handle(Request $request, Closure $next)
    {
        $max = (int) config('wagate.max_body_bytes', 1048576);
        $declared = $request->headers->get('Content-Length');
        if (($declared !== null && (int) $declared > $max) || strlen((string) $request->getContent()) > $max) {
            return response()->json(['message' => "The request body is larger than {$max} bytes."], 413);
        }

        return $next($request);
    }
}
