<?php

namespace App\Http\Controllers;

use App\Http\Requests\QrUpdateRequest;
use App\Http\Requests\StatusUpdateRequest;
use App\Wagate\SessionStore;
use Illuminate\Http\JsonResponse;

/**
 * The legacy endpoints (one request per event, no versions, last writer wins):
 * POST /api/qr and POST /api/whatsapp/status, both answering {"success": true}.
 */
class LegacyController
{
    public function qr(QrUpdateRequest $request, SessionStore $sessions): JsonResponse
    {
        $data = $request->validated();

        return $this->answer($sessions->setLegacy('qr', $data['session_id'], $data['qr']));
    }

    public function status(StatusUpdateRequest $request, SessionStore $sessions): JsonResponse
    {
        $data = $request->validated();

        return $this->answer($sessions->setLegacy('status', $data['session_id'], $data['estado_qr']));
    }

    private function answer(bool $applied): JsonResponse
    {
        if (! $applied) {
            return new JsonResponse(['message' => 'Session not found.'], 404);
        }

        return new JsonResponse(['success' => true]);
    }
}
