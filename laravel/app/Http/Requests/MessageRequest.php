<?php

namespace App\Http\Requests;

use App\Wagate\MessageStore;
use Illuminate\Validation\Rule;

/**
 * Legacy POST /api/whatsapp/message: one MessageItem {"session_id", "message_id", "chat", "sender",
 * "from_me", "push_name"?, "type", "text"?, "quote"?, "react_to"?, "media"?, "timestamp",
 * "sequence"}. itemRules() are the rules of one item, shared with MessageBatchRequest.
 */
class MessageRequest extends GatewayRequest
{
    /** Longest WhatsApp message id accepted (wagate/gateway/laravel.MessageItem.Validate). */
    public const MAX_MESSAGE_ID_LENGTH = 128;

    /** Longest JID or display name accepted. */
    public const MAX_NAME_LENGTH = 255;

    /**
     * @return array<string, array<int, mixed>>
     */
    public function rules(): array
    {
        return self::itemRules('');
    }

    /**
     * The rules of one message item whose fields are under $prefix ("" or "messages.*.").
     * Optional fields may be absent, null or empty; media, when present, is its metadata only.
     *
     * @return array<string, array<int, mixed>>
     */
    public static function itemRules(string $prefix): array
    {
        return [
            $prefix.'session_id' => ['required', 'string', 'max:64', self::SESSION_ID_RULE],
            $prefix.'message_id' => ['required', 'string', 'max:'.self::MAX_MESSAGE_ID_LENGTH],
            $prefix.'chat' => ['required', 'string', 'max:'.self::MAX_NAME_LENGTH],
            $prefix.'sender' => ['required', 'string', 'max:'.self::MAX_NAME_LENGTH],
            $prefix.'from_me' => ['required', 'boolean'],
            $prefix.'push_name' => ['nullable', 'string', 'max:'.self::MAX_NAME_LENGTH],
            $prefix.'type' => ['required', 'string', Rule::in(MessageStore::TYPES)],
            $prefix.'text' => ['nullable', 'string'],
            $prefix.'quote' => ['nullable', 'string', 'max:'.self::MAX_MESSAGE_ID_LENGTH],
            $prefix.'react_to' => ['nullable', 'string', 'max:'.self::MAX_MESSAGE_ID_LENGTH],
            $prefix.'media' => ['nullable', 'array'],
            $prefix.'media.mime_type' => ['nullable', 'string', 'max:'.self::MAX_NAME_LENGTH],
            $prefix.'media.file_name' => ['nullable', 'string', 'max:1024'],
            $prefix.'media.file_length' => ['nullable', 'integer', 'min:0'],
            $prefix.'media.file_sha256' => ['nullable', 'string', 'regex:/^[0-9a-f]{64}$/'],
            $prefix.'timestamp' => ['required', 'date'],
            $prefix.'sequence' => ['required', 'integer', 'min:1'],
        ];
    }
}
