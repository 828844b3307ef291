<?php

namespace App\Console\Commands;

use Illuminate\Console\Command;
use Illuminate\Support\Facades\DB;

/**
 * Deletes processed_batches rows older than --hours (default 24): a gateway retries a batch for
 * minutes, not days, so old Idempotency-Keys are not needed.
 */
class PruneProcessedBatches extends Command
{
    /** @var string */
    protected $signature = 'wagate:prune-batches {--hours=24 : keep keys younger than this}';

    /** @var string */
    protected $description = 'Delete old Idempotency-Key records of the wagate batch endpoints';

    public function handle(): int
    {
        $cutoff = gmdate('Y-m-d H:i:s', time() - 3600 * max(1, (int) $this->option('hours')));
        $deleted = DB::table('processed_batches')->where('created_at', '<', $cutoff)->delete();
        $this->info("Deleted {$deleted} processed batch records.");

        return 0;
    }
}
