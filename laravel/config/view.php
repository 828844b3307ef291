<?php

/*
 * Views: none are rendered, but the view factory must be configured (see config/app.php).
 */

return [
    'paths' => [resource_path('views')],
    'compiled' => env('VIEW_COMPILED_PATH', storage_path('framework/views')),
];
