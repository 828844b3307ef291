<?php

namespace App\Http\Requests;

/**
 * POST /api/whatsapp/receipts/batch: {"receipts": [ReceiptItem, ...]} with 1 to 500 items. One bad
 * item rejects the whole batch with a 422 naming it ("receipts.0.status").
 */
class ReceiptBatchRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, mixed>>
     */
    public function rules(): array
    {
        return [
            'receipts' => ['required', 'array', 'max:'.$this->maxItems()],
            'receipts.*' => ['array'],
        ];
    }

    /**
     * Every item's rules (ReceiptRequest::itemRules), checked one item at a time.
     *
     * @param  \Illuminate\Contracts\Validation\Validator  $validator
     */
    public function withValidator($validator): void
    {
        $this->validateEachItem($validator, 'receipts', ReceiptRequest::itemRules(''));
    }
}
