package laravel

import (
	_ "embed"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

//go:embed openapi.yaml
var openapiYAML []byte

type doc = map[string]any

func loadOpenAPI(t *testing.T) doc {
	t.Helper()
	var d doc
	if err := yaml.Unmarshal(openapiYAML, &d); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	return d
}

// at walks a path of keys through nested maps.
func at(t *testing.T, d any, keys ...string) any {
	t.Helper()
	cur := d
	for i, k := range keys {
		m, ok := cur.(doc)
		if !ok {
			t.Fatalf("%s is not a map", strings.Join(keys[:i], "."))
		}
		if cur, ok = m[k]; !ok {
			t.Fatalf("openapi.yaml lacks %s", strings.Join(keys[:i+1], "."))
		}
	}
	return cur
}

// resolve follows a local $ref.
func resolve(t *testing.T, d doc, v any) doc {
	t.Helper()
	m, ok := v.(doc)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	if ref, ok := m["$ref"].(string); ok {
		return resolve(t, d, at(t, d, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...))
	}
	return m
}

func TestOpenAPIIsVersion31AndEveryRefResolves(t *testing.T) {
	d := loadOpenAPI(t)
	if v, _ := d["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi %q, want 3.1.x", v)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case doc:
			if ref, ok := x["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("non-local $ref %s", ref)
				}
				at(t, d, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(d)
}

// Every endpoint of contract.go is documented with its method and every error status it can get.
func TestOpenAPIListsEveryEndpointAndErrorStatus(t *testing.T) {
	d := loadOpenAPI(t)
	transport := []string{"401", "429", "500", "502", "503", "504"}
	want := []struct {
		path, method string
		statuses     []string
	}{
		{PathQR, "post", append([]string{"200", "404", "413", "422"}, transport...)},
		{PathStatus, "post", append([]string{"200", "404", "413", "422"}, transport...)},
		{PathSessionPrefix + "{session_id}", "get", append([]string{"200", "404"}, transport...)},
		{PathQRBatch, "post", append([]string{"200", "409", "413", "422"}, transport...)},
		{PathStatusBatch, "post", append([]string{"200", "409", "413", "422"}, transport...)},
		{PathMessage, "post", append([]string{"200", "404", "413", "422"}, transport...)},
		{PathReceipt, "post", append([]string{"200", "404", "413", "422"}, transport...)},
		{PathMessageBatch, "post", append([]string{"200", "409", "413", "422"}, transport...)},
		{PathReceiptBatch, "post", append([]string{"200", "409", "413", "422"}, transport...)},
	}
	paths := at(t, d, "paths").(doc)
	if len(paths) != len(want) {
		t.Errorf("%d paths documented, want %d", len(paths), len(want))
	}
	for _, w := range want {
		responses := at(t, d, "paths", w.path, w.method, "responses").(doc)
		for _, s := range w.statuses {
			r, ok := responses[s]
			if !ok {
				t.Errorf("%s %s lacks response %s", w.method, w.path, s)
				continue
			}
			resp := resolve(t, d, r)
			if resp["description"] == nil {
				t.Errorf("%s %s %s has no description", w.method, w.path, s)
			}
			if s == "429" || s == "503" || s == "409" {
				if _, ok := resp["headers"].(doc)["Retry-After"]; !ok {
					t.Errorf("%s %s %s lacks Retry-After", w.method, w.path, s)
				}
			}
		}
	}
	// 422 is Laravel's {message, errors}; other errors {message}.
	v := resolve(t, d, at(t, d, "components", "responses", "ValidationFailed", "content", "application/json", "schema"))
	if !slices.Equal(toStrings(v["required"]), []string{"message", "errors"}) {
		t.Errorf("ValidationError requires %v", v["required"])
	}
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// The headers of contract.go are documented on the endpoints that take them.
func TestOpenAPIDocumentsEveryHeader(t *testing.T) {
	d := loadOpenAPI(t)
	if at(t, d, "components", "securitySchemes", "bearer", "scheme") != "bearer" {
		t.Fatal("no bearer security scheme")
	}
	headerNames := func(path, method string) []string {
		var names []string
		for _, p := range at(t, d, "paths", path, method, "parameters").([]any) {
			prm := resolve(t, d, p)
			if prm["in"] == "header" {
				names = append(names, prm["name"].(string))
			}
		}
		return names
	}
	for _, path := range []string{PathQRBatch, PathStatusBatch} {
		if got := headerNames(path, "post"); !slices.Equal(got, []string{HeaderIdempotencyKey, HeaderTimestamp, HeaderSignature, HeaderNonce, HeaderSignatureV2}) {
			t.Errorf("%s headers %v", path, got)
		}
	}
	for _, path := range []string{PathQR, PathStatus} {
		if got := headerNames(path, "post"); !slices.Equal(got, []string{HeaderTimestamp, HeaderSignature, HeaderNonce, HeaderSignatureV2}) {
			t.Errorf("%s headers %v", path, got)
		}
	}
	if at(t, d, "components", "parameters", "IdempotencyKey", "required") != true {
		t.Error("Idempotency-Key is not required on batches")
	}
}

// The schemas list exactly the JSON fields of the Go wire types, and the contract's limits.
func TestOpenAPISchemasMatchTheWireTypes(t *testing.T) {
	d := loadOpenAPI(t)
	for name, typ := range map[string]any{
		"QRUpdate": QRUpdate{}, "StatusUpdate": StatusUpdate{}, "Ack": Ack{}, "SessionInfo": SessionInfo{},
		"QRItem": QRItem{}, "StatusItem": StatusItem{}, "QRBatch": QRBatch{}, "StatusBatch": StatusBatch{},
		"BatchResult": BatchResult{}, "ItemError": ItemError{}, "ValidationError": ValidationError{}, "ErrorBody": ErrorBody{},
		"MessageItem": MessageItem{}, "MessageMedia": MessageMedia{}, "ReceiptItem": ReceiptItem{}, "MessageBatch": MessageBatch{}, "ReceiptBatch": ReceiptBatch{},
	} {
		var fields []string
		rt := reflect.TypeOf(typ)
		for i := range rt.NumField() {
			fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		var props []string
		for p := range at(t, d, "components", "schemas", name, "properties").(doc) {
			props = append(props, p)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("schema %s has %v, Go type has %v", name, props, fields)
		}
	}
	var statuses []string
	for _, s := range Statuses {
		statuses = append(statuses, string(s))
	}
	if got := toStrings(at(t, d, "components", "schemas", "EstadoQR", "enum")); !slices.Equal(got, statuses) {
		t.Errorf("estado_qr enum %v, want %v", got, statuses)
	}
	for _, b := range []string{"QRBatch", "StatusBatch", "MessageBatch", "ReceiptBatch"} {
		props := at(t, d, "components", "schemas", b, "properties").(doc)
		for _, p := range props {
			if at(t, p, "maxItems") != MaxBatchItems {
				t.Errorf("%s maxItems %v, want %d", b, at(t, p, "maxItems"), MaxBatchItems)
			}
		}
	}
	if at(t, d, "components", "schemas", "SessionID", "maxLength") != MaxSessionIDLen {
		t.Error("session id maxLength differs from MaxSessionIDLen")
	}
}
