package fakelaravel

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFaultWindows(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []FaultWindow
		wantErr string
	}{
		{in: "", want: nil},
		{in: " ; ", want: nil},
		{in: "status@10s+30s,rate=0.5,status=503,retry_after=2h,http_date=true",
			want: []FaultWindow{{Kind: FaultStatus, StartAfterMS: 10_000, DurationMS: 30_000, Rate: 0.5, Status: 503, RetryAfterS: 7200, RetryAfterHTTPDate: true}}},
		{in: "status,rate=1,status=307,location=http://127.0.0.2:1/x?a=b,retry_after=90",
			want: []FaultWindow{{Kind: FaultStatus, Rate: 1, Status: 307, Location: "http://127.0.0.2:1/x?a=b", RetryAfterS: 90}}},
		{in: "latency@1m+0s, rate = 0.25, latency=1.5s, endpoints=status_batch|qr_batch",
			want: []FaultWindow{{Kind: FaultLatency, StartAfterMS: 60_000, Rate: 0.25, LatencyMS: 1500, Endpoints: []string{EndpointStatusBatch, EndpointQRBatch}}}},
		{in: "down@5s+10s; lost_response,rate=0.1,mode=empty",
			want: []FaultWindow{{Kind: FaultDown, StartAfterMS: 5000, DurationMS: 10_000}, {Kind: FaultLostResponse, Rate: 0.1, LostResponseMode: LostResponseEmpty}}},
		{in: "refuse_items,rate=1,sessions=s1|s2,fraction=0.05,seed=9;unaccounted_failures,rate=0.2,items=3;garbage_body,rate=1",
			want: []FaultWindow{
				{Kind: FaultRefuseItems, Rate: 1, Sessions: []string{"s1", "s2"}, SessionFraction: 0.05, SessionSeed: 9},
				{Kind: FaultUnaccountedFailures, Rate: 0.2, Items: 3},
				{Kind: FaultGarbageBody, Rate: 1},
			}},
		{in: "teapot,rate=1", wantErr: `kind "teapot" is not one of`},
		{in: "status@10s,rate=1", wantErr: "want START+DURATION"},
		{in: "status@ten+1s", wantErr: "start"},
		{in: "status,rate", wantErr: "want KEY=VALUE"},
		{in: "status,rate=often", wantErr: `rate="often"`},
		{in: "status,rate=NaN", wantErr: "not a finite number"},
		{in: "status,colour=red", wantErr: "unknown key"},
		{in: "status,retry_after=soon", wantErr: `retry_after="soon"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFaultWindows(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if back, err := ParseFaultWindows(FormatFaultWindows(got)); err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("%q does not read back: %+v %v", FormatFaultWindows(got), back, err)
			}
		})
	}
}

func FuzzParseFaultWindowsRoundTrips(f *testing.F) {
	for _, s := range []string{
		"status@10s+30s,rate=0.5,status=503,retry_after=2h,http_date=true",
		"status,rate=1,status=307,location=http://127.0.0.2:1/x?a=b",
		"latency@1m+0s,rate=0.25,latency=1.5s,endpoints=status_batch|qr_batch;down@5s+10s",
		"refuse_items,rate=1,sessions=s1|s2,fraction=0.05,seed=9;unaccounted_failures,rate=0.2,items=3",
		"lost_response@-1s+-2ms,rate=-0,mode=empty;garbage_body,rate=1e-3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ws, err := ParseFaultWindows(s)
		if err != nil {
			return
		}
		text := FormatFaultWindows(ws)
		back, err := ParseFaultWindows(text)
		if err != nil {
			t.Fatalf("%q parsed, its form %q does not: %v", s, text, err)
		}
		if !reflect.DeepEqual(back, ws) {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, ws, text, back)
		}
		_ = (Faults{Windows: ws}).Validate() // must not panic on anything parsed
	})
}
