package laravel

import "bytes"

// redacted replaces the client's own secrets in text Laravel sent back.
const redacted = "[REDACTED]"

// redact removes the client's token and signing secret from raw (an error body Laravel sent):
// a Laravel that echoes the request (a debug page, a proxy) must not put them into the
// gateway's errors and logs. Secrets shorter than 4 bytes are left alone (they would match
// everywhere and protect nothing).
func (c *Client) redact(raw []byte) []byte {
	for _, s := range [][]byte{[]byte(c.token), c.secret} {
		if len(s) >= 4 && bytes.Contains(raw, s) {
			raw = bytes.ReplaceAll(raw, s, []byte(redacted))
		}
	}
	return raw
}
