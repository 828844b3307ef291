package fakelaravel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"wagate/gateway/laravel"
)

// Validation limits beyond the contract's (Laravel rules "max:" on strings).
const (
	maxQRLen      = 4096 // a WhatsApp pairing code is a few hundred characters
	maxEventIDLen = 128
)

// validationMessage is Laravel 8's top-level message of a 422.
const validationMessage = "The given data was invalid."

// fieldErrors collects Laravel-style validation messages per dotted field name.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, msg string) { fe[field] = append(fe[field], msg) }

// displayName is how Laravel shows an attribute in a message: underscores become spaces.
func displayName(field string) string { return strings.ReplaceAll(field, "_", " ") }

func (fe fieldErrors) required(field string) {
	fe.add(field, fmt.Sprintf("The %s field is required.", displayName(field)))
}

func (fe fieldErrors) err() *laravel.ValidationError {
	if len(fe) == 0 {
		return nil
	}
	return &laravel.ValidationError{Message: validationMessage, Errors: fe}
}

// parseObject decodes body as one JSON object whose numbers stay json.Number. Anything else
// (malformed JSON, another type, trailing data) is a validation error on "body".
func parseObject(body []byte) (map[string]any, *laravel.ValidationError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bodyError(fmt.Sprintf("The body is not valid JSON: %s.", jsonErrText(err)))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bodyError("The body is not valid JSON: unexpected data after the top-level value.")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, bodyError("The body must be a JSON object.")
	}
	return obj, nil
}

func jsonErrText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of body"
	}
	return err.Error()
}

func bodyError(msg string) *laravel.ValidationError {
	return &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{"body": {msg}}}
}

// str validates a required string field of obj and returns it.
func (fe fieldErrors) str(obj map[string]any, key, field string, maxLen int) (string, bool) {
	raw, ok := obj[key]
	if !ok || raw == nil {
		fe.required(field)
		return "", false
	}
	s, ok := raw.(string)
	if !ok {
		fe.add(field, fmt.Sprintf("The %s must be a string.", displayName(field)))
		return "", false
	}
	if s == "" {
		fe.required(field)
		return "", false
	}
	if maxLen > 0 && len(s) > maxLen {
		fe.add(field, fmt.Sprintf("The %s may not be greater than %d characters.", displayName(field), maxLen))
		return "", false
	}
	return s, true
}

func (fe fieldErrors) sessionID(obj map[string]any, field string) (string, bool) {
	s, ok := fe.str(obj, "session_id", field, laravel.MaxSessionIDLen)
	if ok && !laravel.ValidSessionID(s) {
		fe.add(field, fmt.Sprintf("The %s format is invalid.", displayName(field)))
		return "", false
	}
	return s, ok
}

func (fe fieldErrors) estado(obj map[string]any, field string) (laravel.Status, bool) {
	s, ok := fe.str(obj, "estado_qr", field, 0)
	if ok && !laravel.Status(s).Valid() {
		fe.add(field, fmt.Sprintf("The selected %s is invalid.", displayName(field)))
		return "", false
	}
	return laravel.Status(s), ok
}

func (fe fieldErrors) version(obj map[string]any, field string) (int64, bool) {
	raw, ok := obj["version"]
	if !ok || raw == nil {
		fe.required(field)
		return 0, false
	}
	n, ok := raw.(json.Number)
	if !ok {
		fe.add(field, fmt.Sprintf("The %s must be an integer.", displayName(field)))
		return 0, false
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		fe.add(field, fmt.Sprintf("The %s must be an integer.", displayName(field)))
		return 0, false
	}
	if v < 1 {
		fe.add(field, fmt.Sprintf("The %s must be at least 1.", displayName(field)))
		return 0, false
	}
	return v, true
}

func (fe fieldErrors) date(obj map[string]any, key, field string) (time.Time, bool) {
	s, ok := fe.str(obj, key, field, 64)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		fe.add(field, fmt.Sprintf("The %s is not a valid date.", displayName(field)))
		return time.Time{}, false
	}
	return t, true
}

// items validates the batch array under key and returns its elements as objects (nil entries for
// elements that are not objects, already reported).
func (fe fieldErrors) items(obj map[string]any, key string, maxItems int) ([]map[string]any, bool) {
	raw, ok := obj[key]
	if !ok || raw == nil {
		fe.required(key)
		return nil, false
	}
	arr, ok := raw.([]any)
	if !ok {
		fe.add(key, fmt.Sprintf("The %s must be an array.", displayName(key)))
		return nil, false
	}
	if len(arr) == 0 {
		fe.required(key)
		return nil, false
	}
	if len(arr) > maxItems {
		fe.add(key, fmt.Sprintf("The %s may not have more than %d items.", displayName(key), maxItems))
		return nil, false
	}
	out := make([]map[string]any, len(arr))
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			fe.add(fmt.Sprintf("%s.%d", key, i), fmt.Sprintf("The %s.%d must be an array.", displayName(key), i))
			continue
		}
		out[i] = m
	}
	return out, true
}

// DecodeStatusBatch parses and validates the body of POST /api/whatsapp/status/batch. It returns
// either the batch or a Laravel-style validation error naming every bad field in dotted form
// ("statuses.3.estado_qr"); never both. maxItems <= 0 means laravel.MaxBatchItems.
func DecodeStatusBatch(body []byte, maxItems int) (laravel.StatusBatch, *laravel.ValidationError) {
	if maxItems <= 0 {
		maxItems = laravel.MaxBatchItems
	}
	obj, verr := parseObject(body)
	if verr != nil {
		return laravel.StatusBatch{}, verr
	}
	fe := fieldErrors{}
	elems, ok := fe.items(obj, "statuses", maxItems)
	if !ok {
		return laravel.StatusBatch{}, fe.err()
	}
	batch := laravel.StatusBatch{Statuses: make([]laravel.StatusItem, 0, len(elems))}
	for i, m := range elems {
		if m == nil {
			continue
		}
		p := fmt.Sprintf("statuses.%d.", i)
		var it laravel.StatusItem
		it.SessionID, _ = fe.sessionID(m, p+"session_id")
		it.EstadoQR, _ = fe.estado(m, p+"estado_qr")
		it.Version, _ = fe.version(m, p+"version")
		it.EventID, _ = fe.str(m, "event_id", p+"event_id", maxEventIDLen)
		it.ChangedAt, _ = fe.date(m, "changed_at", p+"changed_at")
		batch.Statuses = append(batch.Statuses, it)
	}
	if verr := fe.err(); verr != nil {
		return laravel.StatusBatch{}, verr
	}
	return batch, nil
}

// DecodeQRBatch parses and validates the body of POST /api/qr/batch, like DecodeStatusBatch
// ("qrs.0.qr"). maxItems <= 0 means laravel.MaxBatchItems.
func DecodeQRBatch(body []byte, maxItems int) (laravel.QRBatch, *laravel.ValidationError) {
	if maxItems <= 0 {
		maxItems = laravel.MaxBatchItems
	}
	obj, verr := parseObject(body)
	if verr != nil {
		return laravel.QRBatch{}, verr
	}
	fe := fieldErrors{}
	elems, ok := fe.items(obj, "qrs", maxItems)
	if !ok {
		return laravel.QRBatch{}, fe.err()
	}
	batch := laravel.QRBatch{QRs: make([]laravel.QRItem, 0, len(elems))}
	for i, m := range elems {
		if m == nil {
			continue
		}
		p := fmt.Sprintf("qrs.%d.", i)
		var it laravel.QRItem
		it.SessionID, _ = fe.sessionID(m, p+"session_id")
		it.QR, _ = fe.str(m, "qr", p+"qr", maxQRLen)
		it.Version, _ = fe.version(m, p+"version")
		it.EventID, _ = fe.str(m, "event_id", p+"event_id", maxEventIDLen)
		it.GeneratedAt, _ = fe.date(m, "generated_at", p+"generated_at")
		batch.QRs = append(batch.QRs, it)
	}
	if verr := fe.err(); verr != nil {
		return laravel.QRBatch{}, verr
	}
	return batch, nil
}

// DecodeStatusUpdate parses and validates the legacy body of POST /api/whatsapp/status.
func DecodeStatusUpdate(body []byte) (laravel.StatusUpdate, *laravel.ValidationError) {
	obj, verr := parseObject(body)
	if verr != nil {
		return laravel.StatusUpdate{}, verr
	}
	fe := fieldErrors{}
	var u laravel.StatusUpdate
	u.SessionID, _ = fe.sessionID(obj, "session_id")
	u.EstadoQR, _ = fe.estado(obj, "estado_qr")
	if verr := fe.err(); verr != nil {
		return laravel.StatusUpdate{}, verr
	}
	return u, nil
}

// DecodeQRUpdate parses and validates the legacy body of POST /api/qr.
func DecodeQRUpdate(body []byte) (laravel.QRUpdate, *laravel.ValidationError) {
	obj, verr := parseObject(body)
	if verr != nil {
		return laravel.QRUpdate{}, verr
	}
	fe := fieldErrors{}
	var u laravel.QRUpdate
	u.SessionID, _ = fe.sessionID(obj, "session_id")
	u.QR, _ = fe.str(obj, "qr", "qr", maxQRLen)
	if verr := fe.err(); verr != nil {
		return laravel.QRUpdate{}, verr
	}
	return u, nil
}
