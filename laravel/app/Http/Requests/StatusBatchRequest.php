<?php

namespace App\Http\Requests;

use Illuminate\Validation\Rule;

/**
 * POST /api/whatsapp/status/batch:
 * {"statuses": [{"session_id", "estado_qr", "version", "event_id", "changed_at"}, ...]} with 1 to
 * 500 items. One bad item rejects the whole batch with a 422 naming it ("statuses.3.estado_qr").
 */
class StatusBatchRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, mixed>>
     */
    public function rules(): array
    {
        return [
            'statuses' => ['required', 'array', 'max:'.$this->maxItems()],
            'statuses.*' => ['array'],
            'statuses.*.session_id' => ['required', 'string', 'max:64', self::SESSION_ID_RULE],
            'statuses.*.estado_qr' => ['required', 'string', Rule::in(self::STATUSES)],
            'statuses.*.version' => ['required', 'integer', 'min:1'],
            'statuses.*.event_id' => ['required', 'string', 'max:'.self::MAX_EVENT_ID_LENGTH],
            'statuses.*.changed_at' => ['required', 'date'],
        ];
    }
}
