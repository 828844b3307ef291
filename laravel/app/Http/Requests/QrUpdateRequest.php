<?php

namespace App\Http\Requests;

/**
 * Legacy POST /api/qr: {"session_id": "...", "qr": "..."}.
 */
class QrUpdateRequest extends GatewayRequest
{
    /**
     * @return array<string, array<int, string>>
     */
    public function rules(): array
    {
        return [
            'session_id' => ['required', 'string', 'max:64', self::SESSION_ID_RULE],
            'qr' => ['required', 'string', 'max:'.self::MAX_QR_LENGTH],
        ];
    }
}
