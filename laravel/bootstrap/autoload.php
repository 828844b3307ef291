<?php

/*
 * Class loading without Composer.
 *
 * When the app has a Composer vendor/ directory (a normal Laravel install), that autoloader is
 * used. Otherwise the framework comes from Debian's php-laravel-framework package
 * (/usr/share/php/Illuminate/autoload.php, Laravel 8.83) and this file adds a tiny PSR-4 loader
 * for the application's own App\ namespace.
 */

$composer = __DIR__.'/../vendor/autoload.php';

if (is_file($composer)) {
    require $composer;

    return;
}

require_once getenv('WAGATE_ILLUMINATE_AUTOLOAD') ?: '/usr/share/php/Illuminate/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'App\\', 4) !== 0) {
        return;
    }
    $file = __DIR__.'/../app/'.str_replace('\\', '/', substr($class, 4)).'.php';
    if (is_file($file)) {
        require $file;
    }
});
