package api

// StatusRoute and QRRoute are the route labels of the two polled reads (GET /sessions/{id} and
// GET /sessions/{id}/qr) as ObserveRequest reports them, e.g. in the
// wagate_api_request_duration_seconds histogram.
const (
	StatusRoute = sessionPattern
	QRRoute     = qrPattern
)
