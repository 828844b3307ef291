<?php

namespace App\Http\Controllers;

use App\Http\Requests\QrBatchRequest;
use App\Http\Requests\StatusBatchRequest;
use App\Wagate\IdempotentBatch;
use App\Wagate\SessionStore;

/**
 * The batch endpoints: POST /api/qr/batch and POST /api/whatsapp/status/batch. A validated batch
 * is applied in one transaction with a version-guarded upsert, at most once per Idempotency-Key,
 * and answered with {"success", "updated", "failed", "stale", "errors": [{"session_id", "error"}]}.
 */
class BatchController
{
    public function qrs(QrBatchRequest $request, SessionStore $sessions, IdempotentBatch $idempotent)
    {
        $items = [];
        foreach ($request->validated()['qrs'] as $qr) {
            $items[] = ['session_id' => $qr['session_id'], 'value' => $qr['qr'], 'version' => (int) $qr['version'], 'at' => $qr['generated_at']];
        }

        return $idempotent->run($request, 'qr_batch', function () use ($sessions, $items) {
            return $sessions->applyBatch('qr', $items);
        });
    }

    public function statuses(StatusBatchRequest $request, SessionStore $sessions, IdempotentBatch $idempotent)
    {
        $items = [];
        foreach ($request->validated()['statuses'] as $status) {
            $items[] = ['session_id' => $status['session_id'], 'value' => $status['estado_qr'], 'version' => (int) $status['version'], 'at' => $status['changed_at']];
        }

        return $idempotent->run($request, 'status_batch', function () use ($sessions, $items) {
            return $sessions->applyBatch('status', $items);
        });
    }
}
