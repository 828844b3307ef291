<?php

namespace App\Exceptions;

use Illuminate\Database\QueryException;
use Illuminate\Foundation\Exceptions\Handler as ExceptionHandler;
use Illuminate\Http\JsonResponse;
use Symfony\Component\HttpFoundation\Response;
use Throwable;

/**
 * Renders every error as {"message": ...} (422 adds "errors"). An HTTP error without a message
 * (404 for an unknown route, 405) gets its status text; a database that stayed locked answers
 * 503 with Retry-After so the gateway retries.
 */
class Handler extends ExceptionHandler
{
    /**
     * @var array<int, string>
     */
    protected $dontFlash = ['password', 'password_confirmation'];

    public function register(): void
    {
        $this->renderable(function (QueryException $e) {
            $message = $e->getMessage();
            if (stripos($message, 'database is locked') !== false || stripos($message, 'deadlock') !== false) {
                return new JsonResponse(['message' => 'The database is busy, try again.'], 503, ['Retry-After' => '1']);
            }

            return null;
        });
    }

    /**
     * @return array<string, mixed>
     */
    protected function convertExceptionToArray(Throwable $e)
    {
        $body = parent::convertExceptionToArray($e);
        if (($body['message'] ?? '') === '' && $this->isHttpException($e)) {
            $body['message'] = Response::$statusTexts[$e->getStatusCode()] ?? 'Error';
        }

        return $body;
    }
}
