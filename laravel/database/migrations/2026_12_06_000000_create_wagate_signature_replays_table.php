<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

/*
 * wagate_signature_replays: the v2 request signatures VerifyGatewaySignature accepted, each kept
 * until its timestamp leaves the signature window (expires_at, unix seconds), so that the same
 * signed request sent again is refused as a replay. Rows past expires_at are swept now and then.
 */
return new class extends Migration
{
    public function up(): void
    {
        Schema::create('wagate_signature_replays', function (Blueprint $table) {
            $table->char('signature', 64)->primary();
            $table->unsignedBigInteger('expires_at')->index();
        });
    }

    public function down(): void
    {
        Schema::dropIfExists('wagate_signature_replays');
    }
};
