<?php

/*
 * The wagate gateway contract: credentials and limits. Secrets come from the environment only.
 */

return [
    // Bearer token the gateway sends in "Authorization: Bearer <token>". Empty rejects every request.
    'token' => env('WAGATE_TOKEN', ''),

    // HMAC-SHA256 secret; when set, every POST must be signed: v2 (X-Wagate-Signature-V2), or v1
    // (X-Wagate-Signature) unless require_signature_v2; see VerifyGatewaySignature.
    'secret' => env('WAGATE_SECRET', ''),

    // During a rotation, the old token and secret, still accepted next to the new ones so that
    // gateways can switch without a request refused (docs/security.md in the wagate repository).
    // Empty when no rotation is under way; remove them once every gateway sends the new ones.
    'previous_token' => env('WAGATE_TOKEN_PREVIOUS', ''),
    'previous_secret' => env('WAGATE_SECRET_PREVIOUS', ''),

    // How far (seconds) a signed timestamp may be from this server's clock.
    'signature_skew' => (int) env('WAGATE_SIGNATURE_SKEW', 300),

    // Signature v2 (X-Wagate-Signature-V2: method, path, Idempotency-Key, timestamp, nonce and
    // body, replays refused) is always checked when present. While false, a request with only the
    // v1 signature is accepted too (the migration); set true once every gateway sends v2.
    'require_signature_v2' => (bool) env('WAGATE_REQUIRE_SIGNATURE_V2', false),

    // Largest accepted request body (413 above it) and largest batch (422 above it).
    'max_body_bytes' => 1048576,
    'max_batch_items' => 500,

    // An Idempotency-Key claimed by a request that never finished is considered abandoned after
    // this many seconds, and a new request with the same key may take it over.
    'idempotency_claim_ttl' => (int) env('WAGATE_IDEMPOTENCY_CLAIM_TTL', 120),

    // Whether a write for a session Laravel does not know creates it (true), or fails: 404 on the
    // legacy endpoints, an item error "unknown session" in a batch.
    'create_unknown_sessions' => (bool) env('WAGATE_CREATE_UNKNOWN_SESSIONS', true),

    // Optional rate limit for the wagate routes, e.g. "600,1" (600 per minute). Off when empty:
    // Laravel's default throttle:api (60/min per IP) would cap a gateway serving many sessions.
    'throttle' => env('WAGATE_THROTTLE', ''),
];
