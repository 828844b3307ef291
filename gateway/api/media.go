package api

import (
	"errors"
	"mime"
	"net/http"
	"strconv"

	"wagate/gateway/session"
)

// getMedia streams the decrypted file of a media message the session received: downloaded from
// WhatsApp on demand (Laravel never receives blobs in batches), at most session.MaxMediaBytes,
// with its content type and, for a document, its file name.
func (a *api) getMedia(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok || a.routed(w, r, id) {
		return
	}
	messageID := r.PathValue("message_id")
	if !quotePattern.MatchString(messageID) {
		writeError(w, http.StatusBadRequest, "invalid_message_id", "message id must be 1 to 128 letters, digits, _ or -")
		return
	}
	md, err := a.cfg.Sessions.Media(r.Context(), id, messageID)
	switch {
	case errors.Is(err, session.ErrMediaNotFound):
		writeError(w, http.StatusNotFound, "media_not_found", "this session received no media message with this id")
		return
	case errors.Is(err, session.ErrMediaTooLarge):
		writeError(w, http.StatusUnprocessableEntity, "media_too_large", "the file is over the gateway's bound of "+strconv.Itoa(session.MaxMediaBytes)+" bytes")
		return
	case err != nil:
		a.sessionError(w, r, err)
		return
	}
	h := w.Header()
	ct := md.MimeType
	if _, _, perr := mime.ParseMediaType(ct); ct == "" || perr != nil {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(md.Data)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=3600")
	disposition := "attachment"
	if md.FileName != "" {
		disposition = mime.FormatMediaType("attachment", map[string]string{"filename": md.FileName})
	}
	h.Set("Content-Disposition", disposition)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(md.Data)
	}
}
