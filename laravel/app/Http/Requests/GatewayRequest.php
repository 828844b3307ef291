<?php

namespace App\Http\Requests;

use Illuminate\Contracts\Validation\Validator;
use Illuminate\Foundation\Http\FormRequest;
use Illuminate\Support\Facades\Validator as ValidatorFactory;

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
     * Validates every item of the list $list against $itemRules one item at a time, after the
     * request's own rules, and reports a failure under the item's dotted name ("messages.3.type"),
     * as the wildcard rules "messages.*.type" would. Laravel 8 evaluates wildcard rules in time
     * that grows with the square of the items (500 message items with 17 rules each took seconds,
     * 50 a tenth of a second); one item at a time it grows linearly.
     *
     * @param  array<string, array<int, mixed>>  $itemRules  rules of one item, without a prefix
     */
    protected function validateEachItem(Validator $validator, string $list, array $itemRules): void
    {
        $validator->after(function (Validator $validator) use ($list, $itemRules) {
            $items = $this->validationData()[$list] ?? null;
            if (! is_array($items)) {
                return; // the list's own rules report it
            }
            $each = ValidatorFactory::make([], $itemRules);
            foreach ($items as $i => $item) {
                if (! is_array($item)) {
                    continue; // "$list.*" => array reports it
                }
                $names = [];
                foreach (array_keys($itemRules) as $field) {
                    $names[$field] = "{$list}.{$i}.{$field}";
                }
                $each->setData($item);
                $each->setAttributeNames($names);
                if ($each->fails()) {
                    foreach ($each->errors()->messages() as $field => $messages) {
                        foreach ($messages as $message) {
                            $validator->errors()->add("{$list}.{$i}.{$field}", $message);
                        }
                    }
                }
            }
        });
    }

    /**
     * The largest number of items one batch may carry.
     */
    protected function maxItems(): int
    {
        return (int) config('wagate.max_batch_items', 500);
    }
}
