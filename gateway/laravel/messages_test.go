package laravel

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTheOpenAPIEnumsAreTheGoMessageTypesAndReceiptStatuses(t *testing.T) {
	d := loadOpenAPI(t)
	var types, statuses []string
	for _, m := range MessageTypes {
		types = append(types, string(m))
	}
	for _, s := range ReceiptStatuses {
		statuses = append(statuses, string(s))
	}
	if got := toStrings(at(t, d, "components", "schemas", "MessageType", "enum")); !slices.Equal(got, types) {
		t.Errorf("message type enum %v, want %v", got, types)
	}
	if got := toStrings(at(t, d, "components", "schemas", "ReceiptStatus", "enum")); !slices.Equal(got, statuses) {
		t.Errorf("receipt status enum %v, want %v", got, statuses)
	}
}

func TestReceiptStatusesOnlyMoveForward(t *testing.T) {
	for i, s := range ReceiptStatuses {
		if s.Rank() != i+1 {
			t.Errorf("%s has rank %d, want %d (delivered < read < played)", s, s.Rank(), i+1)
		}
	}
	if ReceiptStatus("seen").Rank() != 0 {
		t.Error("an unknown status has a rank")
	}
}

func TestMessageAndReceiptItemsValidate(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	good := MessageItem{SessionID: "s1", MessageID: "A1", Chat: "5511@s.whatsapp.net", Sender: "5511@s.whatsapp.net",
		Type: MessageText, Text: "hola", Timestamp: at, Sequence: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	for name, mutate := range map[string]func(*MessageItem){
		"bad session id":    func(m *MessageItem) { m.SessionID = "a b" },
		"no message id":     func(m *MessageItem) { m.MessageID = "" },
		"long message id":   func(m *MessageItem) { m.MessageID = strings.Repeat("A", 129) },
		"no chat":           func(m *MessageItem) { m.Chat = "" },
		"no type":           func(m *MessageItem) { m.Type = "" },
		"no sequence":       func(m *MessageItem) { m.Sequence = 0 },
		"negative sequence": func(m *MessageItem) { m.Sequence = -3 },
	} {
		m := good
		mutate(&m)
		if m.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := ReceiptItem{SessionID: "s1", MessageID: "OUT1", Status: ReceiptRead, Timestamp: at, Sequence: 2}
	if err := r.Validate(); err != nil {
		t.Fatalf("valid receipt: %v", err)
	}
	r.Status = "seen"
	if r.Validate() == nil {
		t.Error("a receipt with an unknown status was accepted")
	}
}
