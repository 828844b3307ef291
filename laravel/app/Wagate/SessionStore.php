<?php

namespace App\Wagate;

use DateTimeImmutable;
use DateTimeZone;
use Illuminate\Support\Facades\DB;

/**
 * The whatsapp_sessions table: what the gateway reports about each WhatsApp session.
 *
 * Batches are applied with a version-guarded upsert, so an item only overwrites the stored QR or
 * status when its version is newer than the stored one; an older or equal version is counted as
 * stale and ignored. Within one batch the items of a session count as if applied in order. The
 * SQL (INSERT ... ON CONFLICT (session_id) DO UPDATE ... WHERE excluded.v > table.v) runs on
 * SQLite 3.24+ and PostgreSQL 9.5+; see laravel/README.md for MySQL.
 */
class SessionStore
{
    /** Stored time format: UTC with microseconds, sortable. */
    public const TIME_FORMAT = 'Y-m-d H:i:s.u';

    /** Multi-row upserts carry at most this many rows (7 bindings each). */
    private const CHUNK = 100;

    /** @var array<string, array{value: string, version: string, at: string}> */
    private const KINDS = [
        'status' => ['value' => 'estado_qr', 'version' => 'status_version', 'at' => 'status_changed_at'],
        'qr' => ['value' => 'qr', 'version' => 'qr_version', 'at' => 'qr_generated_at'],
    ];

    /** @var bool */
    private $createUnknown;

    /**
     * @param  bool  $createUnknown  whether a write for an unknown session creates it (the
     *                               default) or fails with "unknown session"
     */
    public function __construct(bool $createUnknown = true)
    {
        $this->createUnknown = $createUnknown;
    }

    /**
     * The current time in the stored format.
     */
    public static function now(): string
    {
        return (new DateTimeImmutable('now', new DateTimeZone('UTC')))->format(self::TIME_FORMAT);
    }

    /**
     * Converts an RFC 3339 (or any PHP-parsable) time to the stored format.
     */
    public static function toStored(string $time): string
    {
        return (new DateTimeImmutable($time))->setTimezone(new DateTimeZone('UTC'))->format(self::TIME_FORMAT);
    }

    /**
     * Converts a stored time to RFC 3339 with microseconds.
     */
    public static function toRfc3339(?string $stored): ?string
    {
        if ($stored === null || $stored === '') {
            return null;
        }

        return (new DateTimeImmutable($stored, new DateTimeZone('UTC')))->format('Y-m-d\TH:i:s.u\Z');
    }

    /**
     * One session as the isSessionActive lookup answers it, or null when it does not exist.
     *
     * @return array<string, mixed>|null
     */
    public function find(string $sessionId): ?array
    {
        $row = DB::table('whatsapp_sessions')->where('session_id', $sessionId)->first();
        if ($row === null) {
            return null;
        }
        $enabled = (bool) $row->enabled;
        $info = [
            'session_id' => $row->session_id,
            'estado_qr' => $row->estado_qr,
            'enabled' => $enabled,
            'active' => $enabled && $row->estado_qr === 'connected',
            'status_version' => (int) $row->status_version,
            'qr_version' => (int) $row->qr_version,
            'updated_at' => self::toRfc3339($row->updated_at ?? $row->created_at),
        ];
        if ($row->qr !== null && $row->qr !== '') {
            $info['qr'] = $row->qr;
        }

        return $info;
    }

    /**
     * Legacy write of a QR code or a status: last writer wins, versions untouched. Returns false
     * when the session is unknown and unknown sessions are not created.
     *
     * @param  string  $kind  "qr" or "status"
     */
    public function setLegacy(string $kind, string $sessionId, string $value): bool
    {
        $c = self::KINDS[$kind];
        $now = self::now();
        if (! $this->createUnknown) {
            return DB::table('whatsapp_sessions')->where('session_id', $sessionId)
                ->update([$c['value'] => $value, $c['at'] => $now, 'updated_at' => $now]) > 0;
        }
        DB::affectingStatement(
            "INSERT INTO whatsapp_sessions (session_id, {$c['value']}, {$c['at']}, enabled, created_at, updated_at)
             VALUES (?, ?, ?, TRUE, ?, ?)
             ON CONFLICT (session_id) DO UPDATE SET {$c['value']} = excluded.{$c['value']},
                 {$c['at']} = excluded.{$c['at']}, updated_at = excluded.updated_at",
            [$sessionId, $value, $now, $now, $now]
        );

        return true;
    }

    /**
     * Applies a validated batch. Call it inside a transaction (DB::transaction); it only writes, so
     * its first statement takes SQLite's write lock at once (no stale read snapshot to upgrade).
     *
     * @param  string  $kind  "qr" or "status"
     * @param  array<int, array{session_id: string, value: string, version: int, at: string}>  $items
     * @return array{success: bool, updated: int, failed: int, stale: int, errors: array<int, array{session_id: string, error: string}>}
     */
    public function applyBatch(string $kind, array $items): array
    {
        $c = self::KINDS[$kind];
        $now = self::now();
        $result = ['success' => true, 'updated' => 0, 'failed' => 0, 'stale' => 0, 'errors' => []];

        if (! $this->createUnknown) {
            foreach ($items as $item) {
                $this->updateExisting($c, $item, $now, $result);
            }
            $result['success'] = $result['failed'] === 0;

            return $result;
        }

        // Sessions that appear once go into multi-row upserts; a session that appears several
        // times has its items applied one by one, in order, so each is counted as updated or stale
        // against the version before it.
        $bySession = [];
        foreach ($items as $item) {
            $bySession[$item['session_id']][] = $item;
        }
        $single = [];
        $repeated = [];
        foreach ($bySession as $list) {
            if (count($list) === 1) {
                $single[] = $list[0];
            } else {
                $repeated[] = $list;
            }
        }
        foreach (array_chunk($single, self::CHUNK) as $chunk) {
            $applied = $this->upsert($c, $chunk, $now);
            $result['updated'] += $applied;
            $result['stale'] += count($chunk) - $applied;
        }
        foreach ($repeated as $list) {
            foreach ($list as $item) {
                $applied = $this->upsert($c, [$item], $now);
                $result['updated'] += $applied;
                $result['stale'] += 1 - $applied;
            }
        }

        return $result;
    }

    /**
     * One multi-row version-guarded upsert; returns the number of rows inserted or updated.
     *
     * @param  array{value: string, version: string, at: string}  $c
     * @param  array<int, array{session_id: string, value: string, version: int, at: string}>  $rows
     */
    private function upsert(array $c, array $rows, string $now): int
    {
        $bindings = [];
        foreach ($rows as $row) {
            array_push($bindings, $row['session_id'], $row['value'], $row['version'], self::toStored($row['at']), $now, $now);
        }
        $values = implode(', ', array_fill(0, count($rows), '(?, ?, ?, ?, TRUE, ?, ?)'));

        return DB::affectingStatement(
            "INSERT INTO whatsapp_sessions (session_id, {$c['value']}, {$c['version']}, {$c['at']}, enabled, created_at, updated_at)
             VALUES {$values}
             ON CONFLICT (session_id) DO UPDATE SET {$c['value']} = excluded.{$c['value']},
                 {$c['version']} = excluded.{$c['version']}, {$c['at']} = excluded.{$c['at']},
                 updated_at = excluded.updated_at
             WHERE excluded.{$c['version']} > whatsapp_sessions.{$c['version']}",
            $bindings
        );
    }

    /**
     * Version-guarded update of an existing session only (unknown sessions fail).
     *
     * @param  array{value: string, version: string, at: string}  $c
     * @param  array{session_id: string, value: string, version: int, at: string}  $item
     * @param  array<string, mixed>  $result
     */
    private function updateExisting(array $c, array $item, string $now, array &$result): void
    {
        $applied = DB::table('whatsapp_sessions')
            ->where('session_id', $item['session_id'])
            ->where($c['version'], '<', $item['version'])
            ->update([
                $c['value'] => $item['value'],
                $c['version'] => $item['version'],
                $c['at'] => self::toStored($item['at']),
                'updated_at' => $now,
            ]);
        if ($applied > 0) {
            $result['updated']++;
        } elseif (DB::table('whatsapp_sessions')->where('session_id', $item['session_id'])->exists()) {
            $result['stale']++;
        } else {
            $result['failed']++;
            $result['errors'][] = ['session_id' => $item['session_id'], 'error' => 'unknown session'];
        }
    }
}
