package laravel

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
)

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

// RedactURL returns raw fit to print: user info (user name and password) and every query value
// are replaced by "redacted", the fragment is dropped. A URL that does not parse is cut before
// its query and its user info is removed the same way. Everything that prints a Laravel URL
// (start-up logs, errors, a redirect's Location) goes through it.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		s, _, _ := strings.Cut(raw, "?")
		s, _, _ = strings.Cut(s, "#")
		if scheme, rest, ok := strings.Cut(s, "://"); ok {
			if at := strings.LastIndex(rest, "@"); at >= 0 && !strings.Contains(rest[:at], "/") {
				rest = "redacted@" + rest[at+1:]
			}
			s = scheme + "://" + rest
		}
		return s
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// redactTransportError rewrites the URL of a *url.Error (what http.Client.Do returns) with
// RedactURL, so a network error never prints the URL's user info or query.
func redactTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}
