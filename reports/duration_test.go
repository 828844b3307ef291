package reports

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestADurationReadsAndWritesTheSameInJSONAndYAML(t *testing.T) {
	var fromJSON, fromYAML, zero Duration
	if err := json.Unmarshal([]byte(`"1m30s"`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(`1m30s`), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if fromJSON.Std() != 90*time.Second || fromYAML != fromJSON {
		t.Errorf("JSON read %v, YAML read %v, want 1m30s both", fromJSON, fromYAML)
	}
	if err := yaml.Unmarshal([]byte(`0`), &zero); err != nil || zero != 0 {
		t.Errorf("a bare YAML 0 = %v, %v", zero, err)
	}
	out, err := yaml.Marshal(fromYAML)
	if err != nil || strings.TrimSpace(string(out)) != "1m30s" {
		t.Errorf("YAML writes %q, %v", out, err)
	}
	var bad Duration
	if err := yaml.Unmarshal([]byte("soon"), &bad); err == nil || !strings.Contains(err.Error(), `"soon" is not a duration`) {
		t.Errorf("a malformed YAML duration: %v", err)
	}
	var ye *YAMLError
	if err := yaml.Unmarshal([]byte("d:\n  a: 1\n"), &struct{ D Duration }{}); !errors.As(err, &ye) || ye.Line != 2 || !strings.Contains(ye.Msg, "expected a duration") {
		t.Errorf("a mapping where a duration belongs: %v, want a *YAMLError on line 2", err)
	}
}
