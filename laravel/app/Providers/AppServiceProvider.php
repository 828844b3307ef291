<?php

namespace App\Providers;

use App\Database\SQLiteConnector;
use App\Wagate\MessageStore;
use App\Wagate\SessionStore;
use Illuminate\Support\ServiceProvider;

/**
 * Binds the wagate services and the SQLite connector.
 */
class AppServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->singleton(SessionStore::class, function ($app) {
            return new SessionStore((bool) $app['config']->get('wagate.create_unknown_sessions', true));
        });
        $this->app->singleton(MessageStore::class, function ($app) {
            return new MessageStore((bool) $app['config']->get('wagate.create_unknown_sessions', true));
        });
        // SQLite pragmas on connect (config/database.php "pragmas").
        $this->app->bind('db.connector.sqlite', SQLiteConnector::class);
    }
}
