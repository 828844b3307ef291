<?php

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

/**
 * HTTP kernel: the global middleware every request passes through, the "api" group and the
 * route middleware aliases used by routes/api.php.
 */
class Kernel extends HttpKernel
{
    /**
     * Global middleware, run on every request before routing.
     *
     * @var array<int, class-string>
     */
    protected $middleware = [
        // Errors (401, 404, 413, 422, 500) are JSON even without an Accept header.
        \App\Http\Middleware\ForceJsonResponse::class,
        // 413 for bodies over config('wagate.max_body_bytes'), before anything parses them.
        \App\Http\Middleware\LimitRequestBody::class,
    ];

    /**
     * Middleware groups.
     *
     * @var array<string, array<int, class-string|string>>
     */
    protected $middlewareGroups = [
        'api' => [
            \Illuminate\Routing\Middleware\SubstituteBindings::class,
        ],
    ];

    /**
     * Route middleware aliases (Laravel 10+ also accepts this property under the name
     * $middlewareAliases; Laravel 11 apps register them in bootstrap/app.php).
     *
     * @var array<string, class-string>
     */
    protected $routeMiddleware = [
        'wagate.token' => \App\Http\Middleware\AuthenticateGateway::class,
        'wagate.signature' => \App\Http\Middleware\VerifyGatewaySignature::class,
        'throttle' => \Illuminate\Routing\Middleware\ThrottleRequests::class,
        'bindings' => \Illuminate\Routing\Middleware\SubstituteBindings::class,
    ];
}
