<?php

namespace App\Http\Requests;

/**
 * POST /api/qr/batch: {"qrs": [{"session_id", "qr", "version", "event_id", "generated_at"}, ...]}
 * with 1 to 500 items. One bad item rejects the whole batch with a 422 naming it ("qrs.3.qr").
 */
class QrBatchRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, string>>
     */
    public function rules(): array
    {
        return [
            'qrs' => ['required', 'array', 'max:'.$this->maxItems()],
            'qrs.*' => ['array'],
            'qrs.*.session_id' => ['required', 'string', 'max:64', self::SESSION_ID_RULE],
            'qrs.*.qr' => ['required', 'string', 'max:'.self::MAX_QR_LENGTH],
            'qrs.*.version' => ['required', 'integer', 'min:1'],
            'qrs.*.event_id' => ['required', 'string', 'max:'.self::MAX_EVENT_ID_LENGTH],
            'qrs.*.generated_at' => ['required', 'date'],
        ];
    }
}
