//go:build race

package pdf

// raceEnabled tells the child that the race detector multiplies its
// address-space use (shadow memory), see applyMemoryLimit.
const raceEnabled = true
