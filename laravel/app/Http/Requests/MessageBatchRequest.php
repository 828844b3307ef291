<?php

namespace App\Http\Requests;

/**
 * POST /api/whatsapp/messages/batch: {"messages": [MessageItem, ...]} with 1 to 500 items. One bad
 * item rejects the whole batch with a 422 naming it ("messages.3.message_id").
 */
class MessageBatchRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, mixed>>
     */
    public function rules(): array
    {
        return [
            'messages' => ['required', 'array', 'max:'.$this->maxItems()],
            'messages.*' => ['array'],
        ];
    }

    /**
     * Every item's rules (MessageRequest::itemRules), checked one item at a time.
     *
     * @param  \Illuminate\Contracts\Validation\Validator  $validator
     */
    public function withValidator($validator): void
    {
        $this->validateEachItem($validator, 'messages', MessageRequest::itemRules(''));
    }
}
