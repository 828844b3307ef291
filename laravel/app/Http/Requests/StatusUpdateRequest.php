<?php

namespace App\Http\Requests;

use Illuminate\Validation\Rule;

/**
 * Legacy POST /api/whatsapp/status: {"session_id": "...", "estado_qr": "connected"}.
 */
class StatusUpdateRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, mixed>>
     */
    public function rules(): array
    {
        return [
            'session_id' => ['required', 'string', 'max:64', self::SESSION_ID_RULE],
            'estado_qr' => ['required', 'string', Rule::in(self::STATUSES)],
        ];
    }
}
