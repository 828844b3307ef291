package reports

import "wagate/gateway/laravel"

// The simulator's message metrics (simulator/metrics' catalog).
const (
	// MetricMessageDeliveryDelay is the time from fakewa accepting a customer's message to Laravel
	// storing it (ms).
	MetricMessageDeliveryDelay = "message_delivery_delay"
	// MetricMessagesLost, MetricMessagesDuplicated and MetricMessagesOutOfOrder are the message
	// ground truth's counts.
	MetricMessagesLost       = "messages_lost"
	MetricMessagesDuplicated = "messages_duplicated"
	MetricMessagesOutOfOrder = "messages_out_of_order"
)

// messageEndpoints are the Laravel endpoints customers' traffic costs (the contract's names, as
// fakelaravel tags laravel_reqs): legacy's one request per message or receipt, batch's batches.
var messageEndpoints = []string{laravel.EndpointMessage, laravel.EndpointReceipt, laravel.EndpointMsgBatch, laravel.EndpointRcptBatch}

// The message figures.
var (
	// FigMessageRequestsPerUser is the Laravel requests for messages and receipts over the whole
	// run, per user: legacy and batch entries run the same per-user workload for the same time.
	FigMessageRequestsPerUser = Figure{Name: "Laravel requests for messages and receipts per user", Unit: "req", Of: func(r *Report) (float64, bool) {
		if r.Scenario.Users == 0 {
			return 0, false
		}
		var n float64
		found := false
		for _, ep := range messageEndpoints {
			if m, ok := r.Metrics[MetricLaravelReqs+"{endpoint:"+ep+"}"]; ok {
				n += m.Values["count"]
				found = true
			}
		}
		return n / float64(r.Scenario.Users), found
	}}
	// FigMessageDelayP99 is the p99 of message_delivery_delay.
	FigMessageDelayP99 = Figure{Name: "message delivery p99", Unit: "ms", Of: metricValue(MetricMessageDeliveryDelay, "p(99)")}
	// FigMessagesWrong counts the customers' messages lost, duplicated or out of order in their
	// chat (ground truth); 0 for a run without messages.
	FigMessagesWrong = Figure{Name: "messages lost, duplicated or out of order", Unit: "", Of: func(r *Report) (float64, bool) {
		var n float64
		for _, name := range []string{MetricMessagesLost, MetricMessagesDuplicated, MetricMessagesOutOfOrder} {
			if m, ok := r.Metrics[name]; ok {
				n += m.Values["count"]
			}
		}
		return n, true
	}}
)
