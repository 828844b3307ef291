<?php

namespace App\Http\Requests;

use Illuminate\Foundation\Http\FormRequest;

/**
 * Base of the wagate form requests: the gateway is authenticated by middleware (bearer token,
 * optional HMAC signature), and the body is always read as JSON, whatever the Content-Type says.
 * A failed rule answers Laravel's 422 {"message": ..., "errors": {"field.dotted.path": [...]}}.
 */
abstract class GatewayRequest extends FormRequest
{
    /** Session ids: ^[A-Za-z0-9_-]{1,64}$ (wagate/gateway/laravel.ValidSessionID). */
    public const SESSION_ID_RULE = 'regex:/^[A-Za-z0-9_-]{1,64}$/';

    /** The five estado_qr values of the contract. */
    public const STATUSES = ['pending', 'connected', 'disconnected', 'logged_out', 'expired'];

    /** Largest QR payload accepted. */
    public const MAX_QR_LENGTH = 4096;

    /** Largest event id accepted. */
    public const MAX_EVENT_ID_LENGTH = 128;

    /**
     * The gateway was authenticated by the route middleware.
     */
    public function authorize(): bool
    {
        return true;
    }

    /**
     * Validate the decoded JSON body (an empty array when the body is not a JSON object).
     *
     * @return array<string, mixed>
     */
    public function validationData(): array
    {
        return $this->json()->all();
    }

    /**
     * The largest number of items one batch may carry.
     */
    protected function maxItems(): int
    {
        return (int) config('wagate.max_batch_items', 500);
    }
}
