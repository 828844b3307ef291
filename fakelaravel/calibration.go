package fakelaravel

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

// calibrationJSON holds the default capacity model. `make calibrate-laravel` overwrites
// calibration.json with values measured against the real Laravel app under laravel/; until then it
// holds the defaults and says so in "source".
//
//go:embed calibration.json
var calibrationJSON []byte

// Calibration is the document stored in calibration.json:
//
//	{"source": "where the numbers come from",
//	 "measured_at": "RFC 3339 time of the measurement, or empty",
//	 "model": {"cores": 1.8, "bootstrap_cpu_ms": 6.2, "per_row_cpu_ms": 0.2, "jitter": 0.15,
//	           "workers": 8, "backlog": 511, "proxy_timeout_ms": 60000, "lookup_cpu_ms": 3.0},
//	 "raw": {free-form measurements the model was derived from}}
type Calibration struct {
	// Source says where the numbers come from (a measurement run, or the defaults).
	Source string `json:"source"`
	// MeasuredAt is the RFC 3339 time of the measurement; empty for defaults.
	MeasuredAt string `json:"measured_at"`
	// Model holds the CapacityModel parameters in JSON-friendly units.
	Model CalibratedModel `json:"model"`
	// Raw holds the free-form measurements behind Model; fakelaravel does not read it.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// CalibratedModel is CapacityModel in the units of calibration.json (milliseconds, floats).
type CalibratedModel struct {
	Cores          float64 `json:"cores"`
	BootstrapCPUMS float64 `json:"bootstrap_cpu_ms"`
	PerRowCPUMS    float64 `json:"per_row_cpu_ms"`
	Jitter         float64 `json:"jitter"`
	Workers        int     `json:"workers"`
	Backlog        int     `json:"backlog"`
	ProxyTimeoutMS float64 `json:"proxy_timeout_ms"`
	// LookupCPUMS is CapacityModel.LookupCPU; absent or zero means the same as BootstrapCPUMS.
	LookupCPUMS float64 `json:"lookup_cpu_ms,omitempty"`
	// LockWaitShare and LockWaitMS are CapacityModel.LockWaitShare and LockWait; absent means
	// none.
	LockWaitShare float64 `json:"lock_wait_share,omitempty"`
	LockWaitMS    float64 `json:"lock_wait_ms,omitempty"`
	// LockHoldMS is CapacityModel.LockHold; absent means the constant LockWaitMS.
	LockHoldMS float64 `json:"lock_hold_ms,omitempty"`
}

func msToDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func durationToMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// CapacityModel converts the calibrated parameters to a CapacityModel.
func (c CalibratedModel) CapacityModel() CapacityModel {
	return CapacityModel{
		Cores:        c.Cores,
		BootstrapCPU: msToDuration(c.BootstrapCPUMS),
		PerRowCPU:    msToDuration(c.PerRowCPUMS),
		Jitter:       c.Jitter,
		Workers:      c.Workers,
		Backlog:      c.Backlog,
		ProxyTimeout: msToDuration(c.ProxyTimeoutMS),
		LookupCPU:    msToDuration(c.LookupCPUMS),
		// A lookup model (ForLookups) has none; writes draw it.
		LockWaitShare: c.LockWaitShare,
		LockWait:      msToDuration(c.LockWaitMS),
		LockHold:      msToDuration(c.LockHoldMS),
	}
}

// Calibrated converts m to the units of calibration.json.
func (m CapacityModel) Calibrated() CalibratedModel {
	return CalibratedModel{
		Cores:          m.Cores,
		BootstrapCPUMS: durationToMS(m.BootstrapCPU),
		PerRowCPUMS:    durationToMS(m.PerRowCPU),
		Jitter:         m.Jitter,
		Workers:        m.Workers,
		Backlog:        m.Backlog,
		ProxyTimeoutMS: durationToMS(m.ProxyTimeout),
		LookupCPUMS:    durationToMS(m.LookupCPU),
		LockWaitShare:  m.LockWaitShare,
		LockWaitMS:     durationToMS(m.LockWait),
		LockHoldMS:     durationToMS(m.LockHold),
	}
}

// ParseCalibration decodes a calibration.json document and validates its model.
func ParseCalibration(data []byte) (Calibration, error) {
	var c Calibration
	if err := json.Unmarshal(data, &c); err != nil {
		return Calibration{}, fmt.Errorf("calibration: %w", err)
	}
	if err := c.Model.CapacityModel().Validate(); err != nil {
		return Calibration{}, fmt.Errorf("calibration: %w", err)
	}
	return c, nil
}

// DefaultCalibration returns the calibration embedded in the binary (fakelaravel/calibration.json).
func DefaultCalibration() Calibration {
	c, err := ParseCalibration(calibrationJSON)
	if err != nil {
		// The file is checked by the package's tests; a broken file is a build defect.
		panic(fmt.Sprintf("fakelaravel: embedded calibration.json: %v", err))
	}
	return c
}

// DefaultCapacityModel returns the capacity model of the embedded calibration.
func DefaultCapacityModel() CapacityModel {
	return DefaultCalibration().Model.CapacityModel()
}
