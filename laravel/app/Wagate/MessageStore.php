<?php

namespace App\Wagate;

use Illuminate\Support\Facades\DB;

/**
 * The whatsapp_messages and whatsapp_receipts tables: what customers wrote to each session, and how
 * far the messages a session sent have got.
 *
 * A message is stored once per (session_id, message_id): posted again (a retry, a replayed batch, a
 * duplicate WhatsApp re-delivered) it is counted as stale and changes nothing but its deliveries
 * counter. A receipt is one row per (session_id, message_id, sender) whose status only moves
 * forward (delivered < read < played): a late "delivered" after "read" is stale. Items are applied
 * in the order received, which is each session's sequence order (the gateway sends them so).
 * The receipt upsert (INSERT ... ON CONFLICT ... DO UPDATE ... WHERE) runs on SQLite 3.24+ and
 * PostgreSQL 9.5+; see laravel/README.md for MySQL.
 */
class MessageStore
{
    /** Receipt statuses and their rank: a receipt applies only when it ranks higher. */
    public const STATUS_RANKS = ['delivered' => 1, 'read' => 2, 'played' => 3];

    /** The message types of the contract (wagate/gateway/laravel.MessageTypes). */
    public const TYPES = ['text', 'reaction', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contact', 'other'];

    /** @var bool */
    private $createUnknown;

    /**
     * @param  bool  $createUnknown  whether items of a session Laravel does not know are stored
     *                               (the default) or fail with "unknown session"
     */
    public function __construct(bool $createUnknown = true)
    {
        $this->createUnknown = $createUnknown;
    }

    /**
     * Stores validated messages; call it inside a transaction (DB::transaction). Returns the batch
     * answer: updated (newly stored), stale (already stored), failed with one errors entry per
     * failed item, in item order.
     *
     * @param  array<int, array<string, mixed>>  $messages  MessageItem fields as validated
     * @return array{success: bool, updated: int, failed: int, stale: int, errors: array<int, array{session_id: string, error: string}>}
     */
    public function storeMessages(array $messages): array
    {
        return $this->apply($messages, function (array $m, string $now): bool {
            return $this->storeMessage($m, $now);
        });
    }

    /**
     * Applies validated receipts, each only when it moves its message's status forward for its
     * sender; call it inside a transaction. Same answer as storeMessages (stale: did not move).
     *
     * @param  array<int, array<string, mixed>>  $receipts  ReceiptItem fields as validated
     * @return array{success: bool, updated: int, failed: int, stale: int, errors: array<int, array{session_id: string, error: string}>}
     */
    public function applyReceipts(array $receipts): array
    {
        return $this->apply($receipts, function (array $r, string $now): bool {
            return $this->applyReceipt($r, $now);
        });
    }

    /**
     * Runs $write on every item of a known session, in order, and accounts for each.
     *
     * @param  array<int, array<string, mixed>>  $items
     * @param  callable(array<string, mixed>, string): bool  $write  true when the item changed something
     * @return array{success: bool, updated: int, failed: int, stale: int, errors: array<int, array{session_id: string, error: string}>}
     */
    private function apply(array $items, callable $write): array
    {
        $now = SessionStore::now();
        $result = ['success' => true, 'updated' => 0, 'failed' => 0, 'stale' => 0, 'errors' => []];
        $known = [];
        foreach ($items as $item) {
            $sessionId = (string) $item['session_id'];
            if (! $this->createUnknown) {
                if (! array_key_exists($sessionId, $known)) {
                    $known[$sessionId] = DB::table('whatsapp_sessions')->where('session_id', $sessionId)->exists();
                }
                if (! $known[$sessionId]) {
                    $result['failed']++;
                    $result['errors'][] = ['session_id' => $sessionId, 'error' => 'unknown session'];

                    continue;
                }
            }
            if ($write($item, $now)) {
                $result['updated']++;
            } else {
                $result['stale']++;
            }
        }
        $result['success'] = $result['failed'] === 0;

        return $result;
    }

    /**
     * Stores one message unless (session_id, message_id) is already stored; true when stored now.
     *
     * @param  array<string, mixed>  $m
     */
    private function storeMessage(array $m, string $now): bool
    {
        $media = '';
        if (! empty($m['media']) && is_array($m['media'])) {
            $media = json_encode([
                'mime_type' => (string) ($m['media']['mime_type'] ?? ''),
                'file_name' => (string) ($m['media']['file_name'] ?? ''),
                'file_length' => (int) ($m['media']['file_length'] ?? 0),
                'file_sha256' => (string) ($m['media']['file_sha256'] ?? ''),
            ]);
        }
        $inserted = DB::table('whatsapp_messages')->insertOrIgnore([
            'session_id' => (string) $m['session_id'],
            'message_id' => (string) $m['message_id'],
            'chat' => (string) $m['chat'],
            'sender' => (string) $m['sender'],
            'from_me' => filter_var($m['from_me'], FILTER_VALIDATE_BOOLEAN) ? 1 : 0,
            'push_name' => (string) ($m['push_name'] ?? ''),
            'type' => (string) $m['type'],
            'body' => (string) ($m['text'] ?? ''),
            'quote' => (string) ($m['quote'] ?? ''),
            'react_to' => (string) ($m['react_to'] ?? ''),
            'media' => $media,
            'sent_at' => SessionStore::toStored((string) $m['timestamp']),
            'sequence' => (int) $m['sequence'],
            'deliveries' => 1,
            'created_at' => $now,
        ]);
        if ($inserted > 0) {
            return true;
        }
        DB::table('whatsapp_messages')
            ->where('session_id', (string) $m['session_id'])
            ->where('message_id', (string) $m['message_id'])
            ->increment('deliveries');

        return false;
    }

    /**
     * Moves one message's status forward for the receipt's sender; true when it moved.
     *
     * @param  array<string, mixed>  $r
     */
    private function applyReceipt(array $r, string $now): bool
    {
        $status = (string) $r['status'];

        return DB::affectingStatement(
            'INSERT INTO whatsapp_receipts
                 (session_id, message_id, chat, sender, status, status_rank, sequence, receipt_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (session_id, message_id, sender) DO UPDATE SET status = excluded.status,
                 status_rank = excluded.status_rank, sequence = excluded.sequence,
                 receipt_at = excluded.receipt_at, updated_at = excluded.updated_at
             WHERE excluded.status_rank > whatsapp_receipts.status_rank',
            [
                (string) $r['session_id'], (string) $r['message_id'], (string) ($r['chat'] ?? ''), (string) ($r['sender'] ?? ''),
                $status, self::STATUS_RANKS[$status], (int) $r['sequence'], SessionStore::toStored((string) $r['timestamp']), $now, $now,
            ]
        ) > 0;
    }
}
