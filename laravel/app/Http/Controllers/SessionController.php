<?php

namespace App\Http\Controllers;

use App\Wagate\SessionStore;
use Illuminate\Http\JsonResponse;

/**
 * GET /api/whatsapp/sessions/{session_id}: the gateway's isSessionActive lookup. Answers the
 * session (active = enabled and connected) or 404 {"message": ...}.
 */
class SessionController
{
    public function show(SessionStore $sessions, string $sessionId): JsonResponse
    {
        $info = $sessions->find($sessionId);
        if ($info === null) {
            return new JsonResponse(['message' => 'Session not found.'], 404);
        }

        return new JsonResponse($info);
    }
}
