package cluster

// VersionsPerEpoch is the width of the sequence part of a version, the same as the session
// layer's session.VersionsPerEpoch.
const VersionsPerEpoch = 1_000_000

// Version returns the event version epoch*VersionsPerEpoch + seq, with 1 <= seq < VersionsPerEpoch
// (seq restarts at each new epoch; at the top the holder Bumps the epoch). Epochs stay near Unix
// seconds (every claim raises the epoch to at least Redis time), so versions stay below 2^53 until
// the year 2255 and continue above the versions of a single-process run, whose epochs come from
// storage's NextEpoch with the Unix time as floor (pass that epoch as Claim's floor to be sure).
func Version(epoch, seq int64) int64 { return epoch*VersionsPerEpoch + seq }

// EpochOf returns the epoch part of a version.
func EpochOf(version int64) int64 { return version / VersionsPerEpoch }
