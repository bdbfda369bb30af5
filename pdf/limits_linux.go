//go:build linux

package pdf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// runtimeSlack is address space granted on top of the memory limit: the Go
// runtime maps its heap in 64 MiB arenas plus metadata, so a cap at the
// limit itself would fail well before the heap reached it.
const runtimeSlack = 256 << 20

// applyMemoryLimit caps the child's address space with RLIMIT_AS, so a
// runaway allocation kills the child instead of starving the machine. The
// Go runtime reserves about a gigabyte of address space at start-up before
// using any of it, so the cap is that baseline plus the limit and some
// slack; past the baseline, address space grows with real use. GOMEMLIMIT
// (set by the Runner) keeps a healthy child's heap under the limit, so only
// live data beyond it reaches the cap.
func applyMemoryLimit(limit int64) error {
	base, err := vmSize()
	if err != nil {
		return err
	}
	headroom := limit + runtimeSlack
	if raceEnabled {
		// The race detector maps shadow memory for every heap byte.
		headroom *= 8
	}
	l := uint64(base + headroom)
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &cur); err != nil {
		return fmt.Errorf("get RLIMIT_AS: %w", err)
	}
	// Only root may raise a hard limit; a stricter one set by the operator
	// stays in force.
	l = min(l, cur.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: l, Max: l}); err != nil {
		return fmt.Errorf("set RLIMIT_AS: %w", err)
	}
	return nil
}

// vmSize is the process's current virtual memory size in bytes.
func vmSize() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("vm size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmSize:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("vm size: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("vm size: %w", err)
	}
	return 0, errors.New("vm size: no VmSize in /proc/self/status")
}
