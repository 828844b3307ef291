<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

/*
 * Incoming messages and the receipts of sent ones (wagate/gateway/laravel/README.md, "Messages and
 * receipts"):
 *  - whatsapp_messages: one row per (session_id, message_id), stored once however often the
 *    gateway posts it (deliveries counts the requests that carried it); read a chat in order with
 *    ORDER BY sequence;
 *  - whatsapp_receipts: one row per (session_id, message_id, sender) holding the furthest status
 *    (status_rank: delivered 1 < read 2 < played 3); a receipt only ever moves it forward.
 * The columns are what fakelaravel's stand-in stores, so a harness reads either the same way.
 */
return new class extends Migration
{
    public function up(): void
    {
        Schema::create('whatsapp_messages', function (Blueprint $table) {
            $table->id();
            $table->string('session_id', 64);
            $table->string('message_id', 128);
            $table->string('chat', 255);
            $table->string('sender', 255);
            $table->boolean('from_me')->default(false);
            $table->string('push_name', 255)->default('');
            $table->string('type', 16);
            $table->text('body');
            $table->string('quote', 128)->default('');
            $table->string('react_to', 128)->default('');
            $table->text('media'); // JSON of the media metadata, '' when none
            $table->timestamp('sent_at', 6);
            $table->unsignedBigInteger('sequence');
            $table->unsignedInteger('deliveries')->default(1);
            $table->timestamp('created_at', 6);
            $table->unique(['session_id', 'message_id']);
            $table->index(['session_id', 'sequence']);
        });

        Schema::create('whatsapp_receipts', function (Blueprint $table) {
            $table->id();
            $table->string('session_id', 64);
            $table->string('message_id', 128);
            $table->string('chat', 255)->default('');
            $table->string('sender', 255)->default('');
            $table->string('status', 16);
            $table->unsignedTinyInteger('status_rank');
            $table->unsignedBigInteger('sequence');
            $table->timestamp('receipt_at', 6);
            $table->timestamp('created_at', 6);
            $table->timestamp('updated_at', 6);
            $table->unique(['session_id', 'message_id', 'sender']);
        });
    }

    public function down(): void
    {
        Schema::dropIfExists('whatsapp_receipts');
        Schema::dropIfExists('whatsapp_messages');
    }
};
