<?php

namespace App\Wagate;

use Closure;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Http\Response;
use Illuminate\Support\Facades\DB;
use Throwable;

/**
 * Runs a batch at most once per Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header),
 * using the processed_batches table:
 *
 *  1. claim: insert the key with no response yet (a short transaction of its own);
 *  2. apply: run the batch and store its response under the key in ONE transaction.
 *
 * A request whose key was already processed gets the stored response again (header
 * Idempotent-Replayed: true) and changes nothing. A key still being processed by another request
 * answers 409 with Retry-After: 1 (a claim older than config('wagate.idempotency_claim_ttl')
 * seconds is taken over: its request died). A key reused with a different body or endpoint
 * answers 422. If applying fails the claim is released, so a retry can run the batch.
 * A batch without an Idempotency-Key is refused with 422 (the contract requires one).
 */
class IdempotentBatch
{
    /** Header carrying the key. */
    public const HEADER = 'Idempotency-Key';

    /** Longest key accepted. */
    public const MAX_KEY_LENGTH = 255;

    /**
     * @param  string  $endpoint  a stable name of the endpoint ("qr_batch", "status_batch")
     * @param  \Closure(): array<string, mixed>  $apply  applies the batch and returns the 200 body
     * @return \Illuminate\Http\JsonResponse|\Illuminate\Http\Response
     */
    public function run(Request $request, string $endpoint, Closure $apply)
    {
        $key = trim((string) $request->headers->get(self::HEADER, ''));
        if ($key === '') {
            return $this->invalidKey('The Idempotency-Key header is required.');
        }
        if (strlen($key) > self::MAX_KEY_LENGTH) {
            return $this->invalidKey('The Idempotency-Key may not be greater than '.self::MAX_KEY_LENGTH.' characters.');
        }

        $fingerprint = hash('sha256', (string) $request->getContent());
        $refusal = $this->claim($key, $endpoint, $fingerprint);
        if ($refusal !== null) {
            return $refusal;
        }

        try {
            $body = DB::transaction(function () use ($apply, $key) {
                $result = $apply();
                $body = json_encode($result);
                DB::table('processed_batches')->where('idempotency_key', $key)
                    ->update(['status_code' => 200, 'response' => $body, 'updated_at' => SessionStore::now()]);

                return $body;
            });
        } catch (Throwable $e) {
            $this->release($key);

            throw $e;
        }

        return new Response($body, 200, ['Content-Type' => 'application/json']);
    }

    /**
     * Claims the key; returns null when this request may apply the batch, otherwise the response
     * to send instead (replay, 409 or 422).
     *
     * @return \Illuminate\Http\JsonResponse|\Illuminate\Http\Response|null
     */
    private function claim(string $key, string $endpoint, string $fingerprint)
    {
        for ($attempt = 0; $attempt < 3; $attempt++) {
            $now = SessionStore::now();
            $inserted = DB::table('processed_batches')->insertOrIgnore([
                'idempotency_key' => $key,
                'endpoint' => $endpoint,
                'fingerprint' => $fingerprint,
                'status_code' => null,
                'response' => null,
                'created_at' => $now,
                'updated_at' => $now,
            ]);
            if ($inserted > 0) {
                return null;
            }

            $row = DB::table('processed_batches')->where('idempotency_key', $key)->first();
            if ($row === null) {
                continue; // released between our insert and our read: try again
            }
            if ($row->endpoint !== $endpoint || ! hash_equals((string) $row->fingerprint, $fingerprint)) {
                return $this->invalidKey('The Idempotency-Key was already used for a different request.');
            }
            if ($row->status_code !== null) {
                return new Response((string) $row->response, (int) $row->status_code, [
                    'Content-Type' => 'application/json',
                    'Idempotent-Replayed' => 'true',
                ]);
            }

            $cutoff = gmdate('Y-m-d H:i:s', time() - (int) config('wagate.idempotency_claim_ttl', 120));
            $takenOver = DB::table('processed_batches')
                ->where('idempotency_key', $key)
                ->whereNull('status_code')
                ->where('updated_at', '<', $cutoff)
                ->update(['updated_at' => $now]);
            if ($takenOver > 0) {
                return null;
            }

            return new JsonResponse(
                ['message' => 'A request with this Idempotency-Key is still being processed.'],
                409,
                ['Retry-After' => '1']
            );
        }

        return new JsonResponse(['message' => 'Could not claim the Idempotency-Key.'], 503, ['Retry-After' => '1']);
    }

    /**
     * Releases an unfinished claim so that a retry of the batch can run.
     */
    private function release(string $key): void
    {
        try {
            DB::table('processed_batches')->where('idempotency_key', $key)->whereNull('status_code')->delete();
        } catch (Throwable $e) {
            // The claim expires after idempotency_claim_ttl; the original error is what matters.
            report($e);
        }
    }

    private function invalidKey(string $message): JsonResponse
    {
        return new JsonResponse([
            'message' => 'The given data was invalid.',
            'errors' => [self::HEADER => [$message]],
        ], 422);
    }
}
