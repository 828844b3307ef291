package metrics

import "wagate/simulator/threshold"

// Info describes one metric the simulator records.
type Info struct {
	Type     string
	Contains string
	Help     string
}

// Catalog lists every metric the simulator records, k6's built-ins first. Scenario validation
// rejects thresholds on other names, as k6 rejects thresholds on undefined metrics.
var Catalog = map[string]Info{
	"vus":                {threshold.Gauge, ContainsDefault, "virtual users running iterations"},
	"vus_max":            {threshold.Gauge, ContainsDefault, "virtual users allocated"},
	"iterations":         {threshold.Counter, ContainsDefault, "iterations (user sessions) completed"},
	"iteration_duration": {threshold.Trend, ContainsTime, "time of one iteration (one user session)"},
	"dropped_iterations": {threshold.Counter, ContainsDefault, "arrival-rate iterations that found no free VU"},
	"checks":             {threshold.Rate, ContainsDefault, "share of passed checks"},
	"http_reqs":          {threshold.Counter, ContainsDefault, "gateway API requests (tags endpoint, method, status)"},
	"http_req_duration":  {threshold.Trend, ContainsTime, "gateway API latency as the Laravel app sees it (tags endpoint, method, status)"},
	"http_req_blocked":   {threshold.Trend, ContainsTime, "time a gateway API request waited for a free connection (or dialed one) before being sent, as in k6"},
	"http_req_failed":    {threshold.Rate, ContainsDefault, "share of gateway API requests that failed (network error or 5xx, or an unexpected 4xx)"},

	"laravel_reqs":                {threshold.Counter, ContainsDefault, "requests fakelaravel received (tag endpoint)"},
	"laravel_requests_per_minute": {threshold.Gauge, ContainsDefault, "Laravel requests per minute: value is the run's mean, min and max over series intervals"},
	"laravel_req_duration":        {threshold.Trend, ContainsTime, "time requests spent on a PHP-FPM worker (service; from fakelaravel's bucket histograms, recorded at bucket upper bounds)"},
	"laravel_response_time":       {threshold.Trend, ContainsTime, "time from a request's arrival at Laravel to its answer, every request (502/504 included): what the gateway waits, less the network; with laravel.real, the real app's answer time (fakelaravel's bucket histograms, upper bounds)"},
	"laravel_queue_wait":          {threshold.Trend, ContainsTime, "time requests waited for a PHP-FPM worker (from fakelaravel's bucket histograms, recorded at bucket upper bounds)"},
	"laravel_reqs_failed":         {threshold.Rate, ContainsDefault, "share of Laravel requests answered with a non-2xx status"},

	"event_delivery_delay":     {threshold.Trend, ContainsTime, "from the simulation causing an event (pairing, drop, logout in fakewa; a QR code shown) to fakelaravel having applied it (tags kind: status or qr, priority, event)"},
	"qr_visibility_delay":      {threshold.Trend, ContainsTime, "from the gateway generating a QR code to fakelaravel having it"},
	"qr_expired_unseen":        {threshold.Counter, ContainsDefault, "QR codes that expired before Laravel had them"},
	"pairing_duration":         {threshold.Trend, ContainsTime, "from session start to connected"},
	"pairings":                 {threshold.Counter, ContainsDefault, "sessions that paired"},
	"pairing_failures":         {threshold.Counter, ContainsDefault, "sessions whose user gave up pairing"},
	"scan_failures":            {threshold.Counter, ContainsDefault, "QR scans that failed (wrong or expired code, or the user's bad luck)"},
	"messages_sent":            {threshold.Counter, ContainsDefault, "messages the gateway accepted"},
	"messages_written":         {threshold.Counter, ContainsDefault, "messages the users' customers wrote to the sessions from fakewa phones (fakewa accepted)"},
	"message_write_failures":   {threshold.Counter, ContainsDefault, "customers' messages fakewa refused (the device unknown, e.g. logged out meanwhile): not written, not judged"},
	"messages_lost":            {threshold.Counter, ContainsDefault, "customers' messages the gateway acknowledged to WhatsApp that Laravel does not hold after the drain"},
	"messages_unacknowledged":  {threshold.Counter, ContainsDefault, "customers' messages Laravel does not hold that the gateway never acknowledged to WhatsApp (held for a device logged out meanwhile): not lost, not judged"},
	"messages_duplicated":      {threshold.Counter, ContainsDefault, "messages Laravel received more than once"},
	"messages_out_of_order":    {threshold.Counter, ContainsDefault, "messages Laravel numbered before a message written earlier in the same chat"},
	"message_delivery_delay":   {threshold.Trend, ContainsTime, "from fakewa accepting a customer's message to Laravel storing it"},
	"receipt_delivery_delay":   {threshold.Trend, ContainsTime, "from fakewa sending a receipt of a sent message to Laravel applying it (tag status: delivered, read)"},
	"sessions":                 {threshold.Gauge, ContainsDefault, "sessions by estado_qr in Laravel (tag state)"},
	"sessions_connected":       {threshold.Gauge, ContainsDefault, "sessions connected according to the gateway"},
	"gateway_cpu_percent":      {threshold.Trend, ContainsDefault, "gateway process CPU, % of one core, sampled every second"},
	"gateway_rss_bytes":        {threshold.Gauge, ContainsData, "gateway process resident set size"},
	"laravel_cpu_percent":      {threshold.Trend, ContainsDefault, "real Laravel's CPU (php-fpm and nginx, masters and workers), % of one core, sampled every second; only with laravel.real"},
	"gateway_goroutines":       {threshold.Gauge, ContainsDefault, "gateway goroutines (from its /metrics)"},
	"redis_ops_per_sec":        {threshold.Gauge, ContainsDefault, "Redis operations per second (INFO instantaneous_ops_per_sec; only when the simulator started a redis-server)"},
	"outbox_depth":             {threshold.Gauge, ContainsDefault, "events waiting in the gateway's batch outbox"},
	"lost_updates":             {threshold.Counter, ContainsDefault, "sessions whose final state never reached Laravel"},
	"gateway_state_mismatches": {threshold.Counter, ContainsDefault, "sessions whose gateway state (Laravel agreeing) differs from what the simulation caused, e.g. a paired device that never logged in"},
	"stale_overwrites":         {threshold.Counter, ContainsDefault, "sessions where an older state replaced a newer one in Laravel"},
	"duplicate_applications":   {threshold.Counter, ContainsDefault, "events Laravel applied more than once"},
	"ground_truth_sessions":    {threshold.Counter, ContainsDefault, "sessions whose final state was compared"},
	"gateway_goroutine_growth": {threshold.Gauge, ContainsDefault, "gateway goroutines left after a hostile-clients flood (once it settled) minus those before it"},
	"hostile_requests":         {threshold.Counter, ContainsDefault, "requests of a hostile-clients flood (tag code: the status the gateway answered, or error)"},
	"fault_recovery_time":      {threshold.Trend, ContainsTime, "from a scheduled fault's end until the gateway answers, its outbox is back to its depth before the fault and (after drops, restarts) 90% of the sessions online before it are again (tag fault); the drain's end when it never recovered"},
	"fault_sessions_back_time": {threshold.Trend, ContainsTime, "after a fault that disconnects sessions (drops, restarts): from its end until 90% of the sessions online before it are online again at WhatsApp (fakewa's view), before the outbox has caught up (tag fault); the drain's end when they never were"},

	// Cluster runs (gateway.replicas > 1): gateway_cpu_percent and gateway_rss_bytes are the
	// replicas' sums; these are each replica's, tagged replica:<gateway id>.
	"gateway_replica_cpu_percent": {threshold.Trend, ContainsDefault, "one gateway replica's CPU, % of one core, sampled every second (tag replica)"},
	"gateway_replica_rss_bytes":   {threshold.Gauge, ContainsData, "one gateway replica's resident set size (tag replica)"},
	"replica_takeover_time":       {threshold.Trend, ContainsTime, "from a replica's SIGKILL until every session it held (devices online before it that went offline with it) is connected again (tag fault); the drain's end when some never were"},
	"replica_takeover_sessions":   {threshold.Counter, ContainsDefault, "sessions a killed replica held, which the takeover watch waited for (tag fault)"},
}

// DefineAll declares every catalogued counter so each appears in the summary with count 0 when
// nothing happened (lost_updates: 0 is a result). Gauges, rates and trends appear only once
// measured, as in k6, so an unmeasured value never reads as a measured zero.
func (r *Registry) DefineAll() {
	for name, info := range Catalog {
		if info.Type == threshold.Counter {
			_ = r.Define(name, info.Type, info.Contains)
		}
	}
}
