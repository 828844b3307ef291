<?php

namespace App\Http\Requests;

use App\Wagate\MessageStore;
use Illuminate\Validation\Rule;

/**
 * Legacy POST /api/whatsapp/receipt: one ReceiptItem {"session_id", "message_id", "chat",
 * "sender", "status", "timestamp", "sequence"}. itemRules() are the rules of one item, shared with
 * ReceiptBatchRequest. chat and sender must be present and may be empty.
 */
class ReceiptRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, mixed>>
     */
    public function rules(): array
    {
        return self::itemRules('');
    }

    /**
     * The rules of one receipt item whose fields are under $prefix ("" or "receipts.*.").
     *
     * @return array<string, array<int, mixed>>
     */
    public static function itemRules(string $prefix): array
    {
        return [
            $prefix.'session_id' => ['required', 'string', 'max:64', self::SESSION_ID_RULE],
            $prefix.'message_id' => ['required', 'string', 'max:'.MessageRequest::MAX_MESSAGE_ID_LENGTH],
            $prefix.'chat' => ['present', 'nullable', 'string', 'max:'.MessageRequest::MAX_NAME_LENGTH],
            $prefix.'sender' => ['present', 'nullable', 'string', 'max:'.MessageRequest::MAX_NAME_LENGTH],
            $prefix.'status' => ['required', 'string', Rule::in(array_keys(MessageStore::STATUS_RANKS))],
            $prefix.'timestamp' => ['required', 'date'],
            $prefix.'sequence' => ['required', 'integer', 'min:1'],
        ];
    }
}
