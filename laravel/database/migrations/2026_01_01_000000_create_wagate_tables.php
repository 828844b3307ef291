<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

/*
 * The wagate tables:
 *  - whatsapp_sessions: one row per WhatsApp session, with the latest QR and status and the
 *    gateway's per-session versions of each (only a newer version overwrites);
 *  - processed_batches: one row per batch Idempotency-Key, with the stored response for replays
 *    (status_code NULL while the batch is being applied).
 * (Named whatsapp_sessions because Laravel's database session driver owns "sessions".)
 */
return new class extends Migration
{
    public function up(): void
    {
        Schema::create('whatsapp_sessions', function (Blueprint $table) {
            $table->id();
            $table->string('session_id', 64)->unique();
            $table->string('estado_qr', 16)->default('pending');
            $table->unsignedBigInteger('status_version')->default(0);
            $table->timestamp('status_changed_at', 6)->nullable();
            $table->text('qr')->nullable();
            $table->unsignedBigInteger('qr_version')->default(0);
            $table->timestamp('qr_generated_at', 6)->nullable();
            $table->boolean('enabled')->default(true);
            $table->timestamp('created_at', 6)->nullable();
            $table->timestamp('updated_at', 6)->nullable();
        });

        Schema::create('processed_batches', function (Blueprint $table) {
            $table->string('idempotency_key', 255)->primary();
            $table->string('endpoint', 64);
            $table->char('fingerprint', 64);
            $table->unsignedSmallInteger('status_code')->nullable();
            $table->text('response')->nullable();
            $table->timestamp('created_at', 6)->nullable()->index();
            $table->timestamp('updated_at', 6)->nullable();
        });
    }

    public function down(): void
    {
        Schema::dropIfExists('processed_batches');
        Schema::dropIfExists('whatsapp_sessions');
    }
};
