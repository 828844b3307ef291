<?php

/*
 * Queue: unused by the wagate endpoints; configured because artisan's queue commands need it.
 */

return [
    'default' => env('QUEUE_CONNECTION', 'sync'),
    'connections' => [
        'sync' => ['driver' => 'sync'],
    ],
    'failed' => ['driver' => 'null'],
];
