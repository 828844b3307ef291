<?php

namespace App\Database;

use Illuminate\Database\Connectors\SQLiteConnector as BaseConnector;

/**
 * SQLite connector that applies the connection's "pragmas" (config/database.php) on connect:
 * synchronous=NORMAL (with WAL: commits do not fsync, checkpoints do; durable across app crashes,
 * the usual setting for WAL) and busy_timeout (how long a writer waits for the write lock).
 * Laravel 11 has the same as the sqlite options "busy_timeout", "journal_mode" and "synchronous";
 * on Laravel 8-10 the container binding "db.connector.sqlite" (AppServiceProvider) does it.
 */
class SQLiteConnector extends BaseConnector
{
    /**
     * @param  array<string, mixed>  $config
     * @return \PDO
     */
    public function connect(array $config)
    {
        $pdo = parent::connect($config);
        foreach ($config['pragmas'] ?? [] as $name => $value) {
            if (preg_match('/^[a-z_]+$/', (string) $name) && preg_match('/^[A-Za-z0-9_]+$/', (string) $value)) {
                $pdo->exec("PRAGMA {$name} = {$value}");
            }
        }

        return $pdo;
    }
}
