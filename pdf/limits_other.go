//go:build !linux

package pdf

// applyMemoryLimit has no hard limit to set outside Linux; GOMEMLIMIT,
// set by the Runner, still makes the garbage collector hold back.
func applyMemoryLimit(int64) error { return nil }
