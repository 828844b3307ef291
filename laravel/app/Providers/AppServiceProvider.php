<?php

namespace App\Providers;

use App\Wagate\SessionStore;
use Illuminate\Support\ServiceProvider;

/**
 * Binds the wagate services.
 */
class AppServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->singleton(SessionStore::class, function ($app) {
            return new SessionStore((bool) $app['config']->get('wagate.create_unknown_sessions', true));
        });
    }
}
