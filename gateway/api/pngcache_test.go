package api

import (
	"bytes"
	"fmt"
	"testing"
)

func TestPNGCacheRendersOnceAndStaysBounded(t *testing.T) {
	c := newPNGCache(3)
	first, err := c.get("code-0")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.get("code-0")
	if &first[0] != &again[0] {
		t.Fatal("a cached code was rendered again")
	}
	for i := 1; i <= 5; i++ {
		if _, err := c.get(fmt.Sprintf("code-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.byQR) != 3 || len(c.order) != 3 {
		t.Fatalf("cache holds %d codes (%d in order), want 3", len(c.byQR), len(c.order))
	}
	for _, evicted := range []string{"code-0", "code-1", "code-2"} {
		if _, ok := c.byQR[evicted]; ok {
			t.Fatalf("%s not evicted", evicted)
		}
	}
	re, _ := c.get("code-0")
	if !bytes.Equal(re, first) {
		t.Fatal("re-rendering gave a different PNG")
	}
}
