package calibrate

import (
	"time"
)

// LoadSummary condenses open-loop runs at one rate.
type LoadSummary struct {
	RateRPS float64 `json:"rate_rps"`
	// P50MS and P99MS are medians over the runs; RunsP50MS and RunsP99MS list each run's.
	P50MS     float64   `json:"p50_ms"`
	P99MS     float64   `json:"p99_ms"`
	RunsP50MS []float64 `json:"runs_p50_ms"`
	RunsP99MS []float64 `json:"runs_p99_ms"`
	// RunsOthersCores is the CPU other processes used during each run; QuietRuns how many runs
	// P50MS and P99MS pool (see Quiet).
	RunsOthersCores []float64 `json:"runs_others_cores"`
	QuietRuns       int       `json:"quiet_runs"`
	OK              int       `json:"ok"`
	Sent            int       `json:"sent"`
}

// OverloadSummary condenses the overload run.
type OverloadSummary struct {
	RateRPS    float64     `json:"rate_rps"`
	Sent       int         `json:"sent"`
	OK         int         `json:"ok"`
	OKRPS      float64     `json:"ok_rps"`
	Status     map[int]int `json:"status"`
	Dropped    int         `json:"dropped"`
	Others     float64     `json:"others_cores"`
	P50MS      float64     `json:"ok_p50_ms"`
	P99MS      float64     `json:"ok_p99_ms"`
	First502MS float64     `json:"first_502_ms"`
}

// KindSummary condenses one kind's measurement for calibration.json's "raw".
type KindSummary struct {
	Kind                  Kind            `json:"kind"`
	Rows                  int             `json:"rows"`
	SoloP50MS             float64         `json:"solo_p50_ms"`
	SoloP90MS             float64         `json:"solo_p90_ms"`
	SaturationRPS         float64         `json:"saturation_rps"`
	SaturationRunsRPS     []float64       `json:"saturation_runs_rps"`
	SaturationRunsOthers  []float64       `json:"saturation_runs_others_cores"`
	SaturationP50MS       float64         `json:"saturation_p50_ms"`
	SaturationP99MS       float64         `json:"saturation_p99_ms"`
	ServerCPUPerRequestMS float64         `json:"server_cpu_per_request_ms,omitempty"`
	ServerCores           float64         `json:"server_cores,omitempty"`
	OthersCores           float64         `json:"others_cores"`
	LoadGeneratorCores    float64         `json:"load_generator_cores"`
	Load50                LoadSummary     `json:"load50"`
	Load80                LoadSummary     `json:"load80"`
	Overload              OverloadSummary `json:"overload"`
}

// Summary is a measurement condensed for calibration.json.
type Summary struct {
	Target            string        `json:"target"`
	Started           time.Time     `json:"started"`
	Finished          time.Time     `json:"finished"`
	LoadAverageBefore [3]float64    `json:"load_average_before"`
	LoadAverageAfter  [3]float64    `json:"load_average_after"`
	Kinds             []KindSummary `json:"kinds"`
}

func round2(v float64) float64 {
	if v < 0 {
		return -round2(-v)
	}
	return float64(int64(v*100+0.5)) / 100
}

func msR(d time.Duration) float64 { return round2(msOf(d)) }

func summarizeLoad(runs []*Result) LoadSummary {
	s := LoadSummary{P50MS: msR(Latency(runs, 50)), P99MS: msR(Latency(runs, 99)), QuietRuns: len(Quiet(runs))}
	for _, r := range runs {
		s.RunsOthersCores = append(s.RunsOthersCores, round2(r.OthersCores))
		s.RateRPS = round2(r.Rate)
		s.RunsP50MS = append(s.RunsP50MS, msR(r.Percentile(50)))
		s.RunsP99MS = append(s.RunsP99MS, msR(r.Percentile(99)))
		s.OK += r.OK()
		s.Sent += r.Sent
	}
	return s
}

// Summarize condenses m.
func Summarize(m *Measurement) Summary {
	s := Summary{Target: m.Target, Started: m.Started, Finished: m.Finished, LoadAverageBefore: m.LoadAvgBefore, LoadAverageAfter: m.LoadAvgAfter}
	for _, km := range m.Kinds {
		ks := KindSummary{
			Kind: km.Kind, Rows: km.Kind.Rows(),
			SaturationRPS:         round2(km.SaturationRPS),
			ServerCPUPerRequestMS: round2(km.ServerCPUPerRequestMS),
			ServerCores:           round2(km.ServerCores),
			OthersCores:           round2(km.OthersCores),
			LoadGeneratorCores:    round2(km.SelfCores),
			SaturationP50MS:       msR(Latency(km.Saturation, 50)),
			SaturationP99MS:       msR(Latency(km.Saturation, 99)),
			Load50:                summarizeLoad(km.Load50),
			Load80:                summarizeLoad(km.Load80),
		}
		if km.Solo != nil {
			ks.SoloP50MS, ks.SoloP90MS = msR(km.Solo.Percentile(50)), msR(km.Solo.Percentile(90))
		}
		for _, r := range km.Saturation {
			ks.SaturationRunsRPS = append(ks.SaturationRunsRPS, round2(r.Throughput()))
			ks.SaturationRunsOthers = append(ks.SaturationRunsOthers, round2(r.OthersCores))
		}
		if o := km.Overload; o != nil {
			ks.Overload = OverloadSummary{
				RateRPS: round2(o.Rate), Sent: o.Sent, OK: o.OK(), OKRPS: round2(o.Throughput()), Status: o.Status,
				Dropped: o.Dropped, Others: round2(o.OthersCores), P50MS: msR(o.Percentile(50)), P99MS: msR(o.Percentile(99)), First502MS: msR(o.First502),
			}
		}
		s.Kinds = append(s.Kinds, ks)
	}
	return s
}
