<?php

namespace App\Console;

use Illuminate\Console\Scheduling\Schedule;
use Illuminate\Foundation\Console\Kernel as ConsoleKernel;

/**
 * Console kernel: the framework's commands (migrate, config:cache, route:cache, ...) plus
 * wagate:prune-batches, scheduled daily.
 */
class Kernel extends ConsoleKernel
{
    /**
     * @var array<int, class-string>
     */
    protected $commands = [
        Commands\PruneProcessedBatches::class,
    ];

    protected function schedule(Schedule $schedule): void
    {
        $schedule->command('wagate:prune-batches')->daily();
    }
}
