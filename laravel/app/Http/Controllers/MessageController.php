<?php

namespace App\Http\Controllers;

use App\Http\Requests\MessageBatchRequest;
use App\Http\Requests\MessageRequest;
use App\Http\Requests\ReceiptBatchRequest;
use App\Http\Requests\ReceiptRequest;
use App\Wagate\IdempotentBatch;
use App\Wagate\MessageStore;
use Illuminate\Http\JsonResponse;
use Illuminate\Support\Facades\DB;

/**
 * Incoming messages and the receipts of sent ones.
 *
 * Legacy (one request per event): POST /api/whatsapp/message and POST /api/whatsapp/receipt answer
 * {"success": true} whether the item changed something or not (a duplicate message, a receipt that
 * does not move forward), 404 for an unknown session when unknown sessions are not created.
 *
 * Batch: POST /api/whatsapp/messages/batch and POST /api/whatsapp/receipts/batch apply a validated
 * batch in one transaction, in item order, at most once per Idempotency-Key, and answer
 * {"success", "updated", "failed", "stale", "errors": [{"session_id", "error"}]} as the QR and status
 * batches do: a message stored now is updated, one already stored stale; a receipt that moves its
 * message's status forward is updated, any other stale.
 */
class MessageController
{
    public function message(MessageRequest $request, MessageStore $store): JsonResponse
    {
        $item = $request->validated();

        return $this->answer(DB::transaction(function () use ($store, $item) {
            return $store->storeMessages([$item]);
        }));
    }

    public function receipt(ReceiptRequest $request, MessageStore $store): JsonResponse
    {
        $item = $request->validated();

        return $this->answer(DB::transaction(function () use ($store, $item) {
            return $store->applyReceipts([$item]);
        }));
    }

    public function messages(MessageBatchRequest $request, MessageStore $store, IdempotentBatch $idempotent)
    {
        $items = $request->validated()['messages'];

        return $idempotent->run($request, 'message_batch', function () use ($store, $items) {
            return $store->storeMessages($items);
        });
    }

    public function receipts(ReceiptBatchRequest $request, MessageStore $store, IdempotentBatch $idempotent)
    {
        $items = $request->validated()['receipts'];

        return $idempotent->run($request, 'receipt_batch', function () use ($store, $items) {
            return $store->applyReceipts($items);
        });
    }

    /**
     * The legacy answer of a one-item result.
     *
     * @param  array{failed: int}  $result
     */
    private function answer(array $result): JsonResponse
    {
        if ($result['failed'] > 0) {
            return new JsonResponse(['message' => 'Session not found.'], 404);
        }

        return new JsonResponse(['success' => true]);
    }
}
