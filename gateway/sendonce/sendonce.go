// Package sendonce makes a message send idempotent: a client that retries POST
// /sessions/{id}/messages with the same Idempotency-Key gets the first answer again and the
// message is sent once. A key's record lives in Redis (batch mode: across restarts and replicas)
// or in the process (legacy mode, which has no Redis) for a configurable time
// (WAGATE_SEND_IDEMPOTENCY_TTL).
//
// A record is first claimed as in flight (for at most InFlightTTL, so a gateway that dies
// mid-send does not block the key for its whole lifetime), then holds the answer. The WhatsApp
// message id of a keyed send is derived from the session and the key (MessageID), so even a send
// repeated after a crash mid-send, or after the record expired, carries the same id, which
// WhatsApp's clients deduplicate.
package sendonce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long a key's answer is kept by default.
const DefaultTTL = 24 * time.Hour

// InFlightTTL bounds how long a claimed key waits for its answer: longer than any send can take
// (the API server's write timeout is 60 s), short enough that a gateway killed mid-send frees it.
const InFlightTTL = 2 * time.Minute

// MaxKeyLen bounds an Idempotency-Key, in bytes.
const MaxKeyLen = 255

// State is what Begin found for a key.
type State int

// States of a key.
const (
	// Claimed: the key was new; the caller sends and then calls Finish (or Abandon on failure).
	Claimed State = iota
	// InFlight: another request with the same key and body is sending right now.
	InFlight
	// Done: the key was answered before; Answer is that answer.
	Done
	// Mismatch: the key was used with a different request body.
	Mismatch
)

// Outcome is Begin's result.
type Outcome struct {
	State State
	// Answer is the stored answer when State is Done.
	Answer []byte
}

// Store remembers keyed sends. Redis and Memory implement it.
type Store interface {
	// Begin claims key for the request whose body has fingerprint fp, or reports what an earlier
	// request with the same key left.
	Begin(ctx context.Context, sessionID, key, fp string) (Outcome, error)
	// Finish stores the answer of a claimed key for the store's TTL.
	Finish(ctx context.Context, sessionID, key, fp string, answer []byte) error
	// Abandon frees a claimed key whose send failed, so a retry sends.
	Abandon(ctx context.Context, sessionID, key string) error
}

// ValidKey reports whether key can be an Idempotency-Key: 1 to MaxKeyLen printable ASCII
// characters.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// Fingerprint identifies a request body by its fields, so a key reused for another message is
// recognised.
func Fingerprint(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// MessageID is the WhatsApp message id of the send keyed by key in a session: "3EB0" and 36
// upper-case hex digits, the shape of the ids whatsmeow generates, the same on every retry.
func MessageID(sessionID, key string) string {
	sum := sha256.Sum256([]byte(sessionID + "\x00" + key))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(sum[:18]))
}

// record is what a key holds.
type record struct {
	FP     string          `json:"fp"`
	Done   bool            `json:"done"`
	Answer json.RawMessage `json:"answer,omitempty"`
}

func (r record) outcome(fp string) Outcome {
	switch {
	case r.FP != fp:
		return Outcome{State: Mismatch}
	case r.Done:
		return Outcome{State: Done, Answer: r.Answer}
	default:
		return Outcome{State: InFlight}
	}
}

// storeKey is the key's name in a store: the session and a hash of the client's key (whatever it
// contains is never stored as such).
func storeKey(sessionID, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "wagate:send:" + sessionID + ":" + hex.EncodeToString(sum[:16])
}

// Redis keeps records in Redis, shared by every gateway using it and kept across restarts.
type Redis struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewRedis returns a Store in rdb keeping answers for ttl.
func NewRedis(rdb redis.UniversalClient, ttl time.Duration) *Redis {
	return &Redis{rdb: rdb, ttl: ttl}
}

// Begin implements Store.
func (s *Redis) Begin(ctx context.Context, sessionID, key, fp string) (Outcome, error) {
	k := storeKey(sessionID, key)
	claim, err := json.Marshal(record{FP: fp})
	if err != nil {
		return Outcome{}, err
	}
	// SET NX, then GET: a record that expires in between is claimed on the next pass.
	for range 3 {
		ok, err := s.rdb.SetNX(ctx, k, claim, InFlightTTL).Result()
		if err != nil {
			return Outcome{}, fmt.Errorf("sendonce: claim: %w", err)
		}
		if ok {
			return Outcome{State: Claimed}, nil
		}
		raw, err := s.rdb.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("sendonce: read: %w", err)
		}
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return Outcome{}, fmt.Errorf("sendonce: record of a key: %w", err)
		}
		return r.outcome(fp), nil
	}
	return Outcome{}, errors.New("sendonce: the key's record kept expiring while read")
}

// Finish implements Store.
func (s *Redis) Finish(ctx context.Context, sessionID, key, fp string, answer []byte) error {
	raw, err := json.Marshal(record{FP: fp, Done: true, Answer: answer})
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, storeKey(sessionID, key), raw, s.ttl).Err(); err != nil {
		return fmt.Errorf("sendonce: store the answer: %w", err)
	}
	return nil
}

// Abandon implements Store.
func (s *Redis) Abandon(ctx context.Context, sessionID, key string) error {
	if err := s.rdb.Del(ctx, storeKey(sessionID, key)).Err(); err != nil {
		return fmt.Errorf("sendonce: free the key: %w", err)
	}
	return nil
}

// MaxMemoryKeys bounds the records Memory holds; past it the oldest expire first.
const MaxMemoryKeys = 100_000

// Memory keeps records in the process (legacy mode): they do not survive a restart and are not
// shared between replicas.
type Memory struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	records map[string]memRecord
	order   []string // insertion order, for the bound
}

type memRecord struct {
	record
	expires time.Time
}

// NewMemory returns an in-process Store keeping answers for ttl.
func NewMemory(ttl time.Duration) *Memory {
	return &Memory{ttl: ttl, now: time.Now, records: map[string]memRecord{}}
}

// Begin implements Store.
func (s *Memory) Begin(_ context.Context, sessionID, key, fp string) (Outcome, error) {
	k := storeKey(sessionID, key)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.records[k]; ok && now.Before(r.expires) {
		return r.outcome(fp), nil
	}
	s.put(k, memRecord{record: record{FP: fp}, expires: now.Add(InFlightTTL)})
	return Outcome{State: Claimed}, nil
}

// Finish implements Store.
func (s *Memory) Finish(_ context.Context, sessionID, key, fp string, answer []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(storeKey(sessionID, key), memRecord{record: record{FP: fp, Done: true, Answer: answer}, expires: s.now().Add(s.ttl)})
	return nil
}

// Abandon implements Store.
func (s *Memory) Abandon(_ context.Context, sessionID, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, storeKey(sessionID, key))
	return nil
}

// put stores r under k and drops expired records, then the oldest, past MaxMemoryKeys.
func (s *Memory) put(k string, r memRecord) {
	if _, ok := s.records[k]; !ok {
		s.order = append(s.order, k)
	}
	s.records[k] = r
	if len(s.order) <= MaxMemoryKeys {
		return
	}
	now := s.now()
	kept := s.order[:0]
	for i, key := range s.order {
		rec, ok := s.records[key]
		switch {
		case !ok:
		case now.After(rec.expires) || len(s.order)-i > MaxMemoryKeys && key != k:
			delete(s.records, key)
		default:
			kept = append(kept, key)
		}
	}
	s.order = kept
}
