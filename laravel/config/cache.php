<?php

/*
 * Cache: only used by the optional "throttle" middleware (see config/wagate.php).
 */

return [
    'default' => env('CACHE_DRIVER', 'file'),
    'stores' => [
        'file' => ['driver' => 'file', 'path' => storage_path('framework/cache/data')],
        'array' => ['driver' => 'array', 'serialize' => false],
    ],
    'prefix' => 'wagate_cache',
];
