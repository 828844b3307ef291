<?php

/*
 * The wagate gateway contract (wagate/gateway/laravel): loaded under /api by the
 * RouteServiceProvider. Every route needs the gateway's bearer token and, when WAGATE_SECRET is
 * set, its HMAC body signature.
 */

use App\Http\Controllers\BatchController;
use App\Http\Controllers\LegacyController;
use App\Http\Controllers\MessageController;
use App\Http\Controllers\SessionController;
use Illuminate\Support\Facades\Route;

$middleware = ['wagate.token', 'wagate.signature'];
if (($throttle = (string) config('wagate.throttle', '')) !== '') {
    $middleware[] = 'throttle:'.$throttle;
}

Route::middleware($middleware)->group(function () {
    // Legacy: one request per event, and the isSessionActive lookup.
    Route::post('qr', [LegacyController::class, 'qr']);
    Route::post('whatsapp/status', [LegacyController::class, 'status']);
    Route::get('whatsapp/sessions/{session_id}', [SessionController::class, 'show'])
        ->where('session_id', '[A-Za-z0-9_-]{1,64}');

    // Batch: versioned items, one transaction, Idempotency-Key.
    Route::post('qr/batch', [BatchController::class, 'qrs']);
    Route::post('whatsapp/status/batch', [BatchController::class, 'statuses']);

    // Incoming messages and the receipts of sent ones: stored once per message id, receipts only
    // forward; legacy one request per event, batches with an Idempotency-Key.
    Route::post('whatsapp/message', [MessageController::class, 'message']);
    Route::post('whatsapp/receipt', [MessageController::class, 'receipt']);
    Route::post('whatsapp/messages/batch', [MessageController::class, 'messages']);
    Route::post('whatsapp/receipts/batch', [MessageController::class, 'receipts']);
});
