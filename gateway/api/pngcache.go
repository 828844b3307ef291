package api

import (
	"sync"

	qrcode "github.com/skip2/go-qrcode"
)

// pngCache keeps the PNG renderings of recent QR codes: rendering one costs about 3 ms and 1.4 MB
// of garbage, and a pending session's code is polled many times during its 20-60 s life. Entries
// leave in insertion order once max are held (codes rotate, so old ones are never asked again).
type pngCache struct {
	mu    sync.Mutex
	max   int
	byQR  map[string][]byte
	order []string
	next  int
}

func newPNGCache(max int) *pngCache {
	return &pngCache{max: max, byQR: make(map[string][]byte, max), order: make([]string, 0, max)}
}

// get returns the PNG of code, rendering it when it is not cached.
func (c *pngCache) get(code string) ([]byte, error) {
	c.mu.Lock()
	png, ok := c.byQR[code]
	c.mu.Unlock()
	if ok {
		return png, nil
	}
	png, err := qrcode.Encode(code, qrcode.Medium, QRPNGSize)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byQR[code]; ok {
		return png, nil
	}
	if len(c.order) < c.max {
		c.order = append(c.order, code)
	} else {
		delete(c.byQR, c.order[c.next])
		c.order[c.next] = code
		c.next = (c.next + 1) % c.max
	}
	c.byQR[code] = png
	return png, nil
}
