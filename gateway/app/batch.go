package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/cache"
	"wagate/gateway/config"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/metrics"
	"wagate/gateway/outbox"
	"wagate/gateway/redisx"
	"wagate/gateway/sendonce"
)

// batchParts wires batch mode: Redis (or the embedded miniredis), the durable outbox, the batch
// delivery and its flusher (which settles the message journal's rows), and the 3-level cache
// that records the gateway's own events (write through) and answers isSessionActive. The API
// reads the sessions this gateway owns from the session manager (their source of truth) and any
// other session through the cache.
func batchParts(ctx context.Context, cfg config.Config, client *laravel.Client, m *metrics.Metrics, journal *journalKeeper, log *slog.Logger) (parts modeParts, err error) {
	var closers []func(context.Context) error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i](context.Background())
			}
		}
	}()

	rc, err := redisx.Open(ctx, cfg.RedisURL, cfg.RedisStartTimeout, log)
	if err != nil {
		return parts, err
	}
	closers = append(closers, func(context.Context) error { return rc.Close() })
	if !rc.Embedded {
		// An evicting Redis would drop undelivered events like cache keys: refuse to start.
		if err := rc.CheckEvictionPolicy(ctx); err != nil {
			return parts, fmt.Errorf("app: %w", err)
		}
	}

	var onDataLost atomic.Pointer[func(generation int64)]
	obCfg := cfg.OutboxConfig()
	obCfg.Logger = log
	// A re-driven dead letter of a message or receipt is journalled again (its row was deleted
	// when it was dead-lettered).
	obCfg.Redriving = journal.journal.Record
	obCfg.Journaled = true // the message journal replays every loss the keeper notices (journal.go)
	obCfg.OnDataLost = func(gen int64) {
		if f := onDataLost.Load(); f != nil {
			(*f)(gen)
		}
	}
	ob, err := outbox.New(ctx, rc.Client, obCfg)
	if err != nil {
		return parts, fmt.Errorf("app: outbox: %w", err)
	}
	closers = append([]func(context.Context) error{func(context.Context) error { ob.Close(); return nil }}, closers...)
	bd, err := batch.New(batch.Options{
		Outbox: ob,
		Sender: client,
		Config: cfg.BatchConfig(),
		Logger: log,
		// Messages and receipts Laravel acknowledged, and their delay.
		Delivered: func(ev *event.Event) { m.Delivered(ev, time.Now()) },
		BatchSent: m.BatchSizes(),
		// The message journal's rows of applied items are marked settled, those of dead-lettered
		// ones deleted; an entry taken in whose item was applied is acknowledged away (intake.go).
		Settled:   journal.settled,
		Journaled: journal.journaled,
		// ... and the batches of messages and receipts noted on their rows before their first
		// send, so a batch whose record Redis lost is sent again under its key (resend.go).
		Noting: journal.note,
		Noted:  journal.noted,
	})
	if err != nil {
		return parts, fmt.Errorf("app: batch delivery: %w", err)
	}
	journal.deliver, journal.held, journal.inOutbox = bd.Deliver, bd.HeldEvents, ob.MessagingEvents
	if !cfg.Cluster {
		journal.resend = bd.Resend
	}
	if err := m.RegisterBatch(bd); err != nil {
		return parts, fmt.Errorf("app: batch metrics: %w", err)
	}
	if err := m.RegisterJournal(journal.snapshot); err != nil {
		return parts, fmt.Errorf("app: journal metrics: %w", err)
	}
	if err := m.RegisterRedisPolicy(ob.EvictionPolicyUnsafe); err != nil {
		return parts, fmt.Errorf("app: redis policy metric: %w", err)
	}

	cacheCfg := cfg.CacheConfig()
	cacheCfg.Logger = log
	// Status reads get connections of their own: a reconnect storm's write-throughs and outbox
	// appends must not make the API wait for one (cache.Config.Reads).
	cacheCfg.Reads = rc.Pool()
	c, err := cache.New(ctx, rc.Client, client, cacheCfg)
	if err != nil {
		return parts, fmt.Errorf("app: cache: %w", err)
	}
	// The cache closes after the delivery (closers run after Delivery.Close), before Redis.
	closers = append([]func(context.Context) error{func(context.Context) error { return c.Close() }}, closers...)
	if err := m.RegisterCache(c); err != nil {
		return parts, fmt.Errorf("app: cache metrics: %w", err)
	}

	if err := bd.Start(ctx); err != nil {
		return parts, err
	}
	var warnings []string
	if rc.Embedded {
		warnings = append(warnings, redisx.EmbeddedReason)
	}
	return modeParts{
		delivery: c.WriteThrough(bd),
		settle:   bd.Settle,
		activity: c,
		readerFor: func(local api.SessionReader) api.SessionReader {
			c.RenewFrom(local) // the manager's live state renews its sessions' statuses, not Laravel
			return c.Reader(local)
		},
		routes: []api.Route{
			{Pattern: "GET /metrics/batch", Handler: bd.MetricsHandler(), Public: true},
			{Pattern: "GET /metrics/cache", Handler: c.MetricsHandler(), Public: true},
		},
		deadLetters: ob,
		sendKeys:    sendonce.NewRedis(rc.Client, cfg.SendIdempotencyTTL),
		ready: []api.Check{{Name: "redis", Check: func(ctx context.Context) error {
			_, err := rc.Ready(ctx)
			return err
		}}, {
			// Redis's maxmemory-policy switched at runtime to one that can evict the outbox
			// (the start refuses one): not ready until it is safe again (the outbox's keeper).
			Name: "redis_eviction_policy", Check: func(context.Context) error { return ob.EvictionRisk() },
		}},
		warnings:    warnings,
		closers:     closers,
		sharedRedis: rc.Client,
		outbox:      ob,
		redisData: &redisData{
			generation:     ob.Generation,
			run:            ob.Run,
			restartedSince: ob.RestartedSince,
			watch: func(onLost func(generation int64)) {
				onDataLost.Store(&onLost)
				ob.Start(ctx)
			},
		},
	}, nil
}
