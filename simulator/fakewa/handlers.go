package fakewa

import (
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleNode answers one node from the client.
func (c *conn) handleNode(n *waBinary.Node) {
	switch n.Tag {
	case "iq":
		c.handleIQ(n)
	case "message":
		c.handleMessage(n)
	case "ack":
		c.s.clientAcks.Add(1)
		if attrString(n, "class") == "receipt" {
			c.receiptAcked(n)
		}
	case "receipt":
		c.receiptFromDevice(n)
	default:
		// presence, chatstate, ...: nothing to answer.
	}
}

func (c *conn) handleIQ(n *waBinary.Node) {
	switch attrString(n, "type") {
	case "result", "error":
		c.deliverResponse(n)
		return
	}
	var err error
	switch attrString(n, "xmlns") {
	case "w:p":
		if d := c.loggedInDevice(); d != nil && c.keepaliveSilent(d) {
			c.s.events.add(Event{Kind: EventKeepaliveIgnored, Conn: c.id, JID: d.jid.String(), Phone: d.account.phone})
			return
		}
		err = c.sendNode(iqResult(n))
	case "encrypt":
		err = c.handleEncrypt(n)
	case "usync":
		err = c.sendNode(c.usyncResult(n))
	case "w:m":
		if _, ok := n.GetOptionalChildByTag("media_conn"); ok {
			err = c.sendNode(mediaConnResult(n))
		} else {
			err = c.sendNode(iqResult(n))
		}
	case "md":
		if _, ok := n.GetOptionalChildByTag("remove-companion-device"); ok {
			c.clientLogout()
		}
		err = c.sendNode(iqResult(n))
	default:
		// passive, w:sync:app:state, privacy, ... : an empty result is a safe answer.
		err = c.sendNode(iqResult(n))
	}
	if err != nil {
		c.s.log.Debug("fakewa: answer iq", "conn", c.id, "err", err)
	}
}

func (c *conn) keepaliveSilent(d *device) bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return d.silent
}

// clientLogout handles Client.Logout: the device unlinks itself.
func (c *conn) clientLogout() {
	c.s.mu.Lock()
	d := c.device
	if d == nil || d.loggedOut {
		c.s.mu.Unlock()
		return
	}
	d.loggedOut = true
	c.s.mu.Unlock()
	c.s.events.add(Event{Kind: EventLoggedOut, Conn: c.id, JID: d.jid.String(), Phone: d.account.phone, Detail: "client logout"})
}

func (c *conn) handleEncrypt(n *waBinary.Node) error {
	if attrString(n, "type") != "get" {
		if _, ok := n.GetOptionalChildByTag("list"); ok {
			if d := c.loggedInDevice(); d != nil {
				c.s.mu.Lock()
				d.storeUploadedKeys(n)
				c.s.mu.Unlock()
			}
		}
		return c.sendNode(iqResult(n)) // prekey upload: accepted
	}
	if _, ok := n.GetOptionalChildByTag("count"); ok {
		return c.sendNode(iqResult(n, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": itoa(c.s.cfg.PreKeyCount)}}))
	}
	if key, ok := n.GetOptionalChildByTag("key"); ok {
		users := make([]waBinary.Node, 0, len(key.GetChildren()))
		for _, u := range key.GetChildren() {
			jidAttr, ok := u.Attrs["jid"]
			if u.Tag != "user" || !ok {
				continue
			}
			jid, ok := jidAttr.(types.JID)
			if !ok {
				continue
			}
			users = append(users, c.s.bundleNode(jidAttr, jid))
		}
		return c.sendNode(iqResult(n, waBinary.Node{Tag: "list", Content: users}))
	}
	return c.sendNode(iqResult(n))
}

// usyncResult answers a usync query: every user has one device, the phone (device 0).
func (c *conn) usyncResult(n *waBinary.Node) waBinary.Node {
	req, ok := n.GetOptionalChildByTag("usync")
	if !ok {
		return iqResult(n)
	}
	_, wantContact := req.GetOptionalChildByTag("query", "contact")
	listNode := req.GetChildByTag("list")
	list := listNode.GetChildren()
	users := make([]waBinary.Node, 0, len(list))
	for _, u := range list {
		jidAttr, ok := u.Attrs["jid"]
		if u.Tag != "user" || !ok {
			continue
		}
		content := []waBinary.Node{{Tag: "devices", Content: []waBinary.Node{{
			Tag: "device-list", Content: []waBinary.Node{{Tag: "device", Attrs: waBinary.Attrs{"id": "0"}}},
		}}}}
		if wantContact {
			content = append(content, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": "in"}})
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jidAttr}, Content: content})
	}
	attrs := waBinary.Attrs{}
	for _, k := range []string{"sid", "mode", "context", "index", "last"} {
		if v := attrString(&req, k); v != "" {
			attrs[k] = v
		}
	}
	return iqResult(n, waBinary.Node{Tag: "usync", Attrs: attrs, Content: []waBinary.Node{
		{Tag: "result"},
		{Tag: "list", Content: users},
	}})
}

// handleMessage acks a message the client sent, then has its recipient send the configured
// receipts (sendReceipt: held until the device acks them). A peer message (category "peer": a
// device's protocol message to its own account's devices, such as whatsmeow's request to the
// phone for a message it could not decrypt) is acked and gets no delivery or read receipt, as
// WhatsApp's own devices answer those with a peer_msg receipt instead: receipts for it reached
// Laravel as read receipts of a chat with the account itself (the real-Laravel messages test in
// CI at 2955b58, after a decryption retry under load).
func (c *conn) handleMessage(n *waBinary.Node) {
	id := attrString(n, "id")
	to, ok := attrJID(n, "to")
	if id == "" || !ok {
		return
	}
	now := time.Now()
	if err := c.sendNode(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{
		"class": "message", "id": id, "from": to, "t": unixString(now),
	}}); err != nil {
		return
	}
	e := Event{Kind: EventMessageAcked, Conn: c.id, MessageID: id, To: to.String()}
	d := c.loggedInDevice()
	if d != nil {
		e.JID, e.Phone = d.jid.String(), d.account.phone
	}
	c.s.events.add(e)
	if d == nil || attrString(n, "category") == "peer" {
		return
	}
	if sched := c.s.receiptSchedule(d); sched != nil {
		c.scheduleReceipts(e, id, to, *sched)
		return
	}
	var kinds []string
	switch c.s.cfg.Receipts {
	case ReceiptsDeliveredAndRead:
		kinds = []string{receiptDelivery, receiptRead}
	case ReceiptsDelivered:
		kinds = []string{receiptDelivery}
	}
	if len(kinds) == 0 {
		return
	}
	delay := c.s.cfg.ReceiptDelay
	send := func() {
		for _, typ := range kinds {
			c.s.sendReceipt(d, e, id, to, typ)
			if delay > 0 && typ == receiptDelivery {
				time.Sleep(delay)
			}
		}
	}
	if delay > 0 {
		time.AfterFunc(delay, send)
	} else {
		send()
	}
}
