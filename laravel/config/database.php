<?php

/*
 * Database: SQLite by default (the file lives in database/, which must be writable by the PHP-FPM
 * user because of SQLite's WAL files). The wagate tables also work on PostgreSQL (see README).
 */

return [
    'default' => env('DB_CONNECTION', 'sqlite'),

    'connections' => [
        'sqlite' => [
            'driver' => 'sqlite',
            'database' => env('DB_DATABASE', database_path('wagate.sqlite')),
            'prefix' => '',
            'foreign_key_constraints' => true,
            // Applied on connect by App\Database\SQLiteConnector. The database file is put in WAL
            // mode once, by laravel/scripts/up.sh (PRAGMA journal_mode=WAL persists).
            'pragmas' => [
                'synchronous' => env('DB_SQLITE_SYNCHRONOUS', 'NORMAL'),
                'busy_timeout' => (int) env('DB_SQLITE_BUSY_TIMEOUT', 10000),
            ],
        ],
        'pgsql' => [
            'driver' => 'pgsql',
            'host' => env('DB_HOST', '127.0.0.1'),
            'port' => env('DB_PORT', '5432'),
            'database' => env('DB_DATABASE', 'wagate'),
            'username' => env('DB_USERNAME', 'wagate'),
            'password' => env('DB_PASSWORD', ''),
            'charset' => 'utf8',
            'prefix' => '',
            'schema' => 'public',
            'sslmode' => 'prefer',
        ],
    ],

    'migrations' => 'migrations',
];
