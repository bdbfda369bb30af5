package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/grading"
	"github.com/korrigo/korrigo/realtime"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/servertest"
)

// BenchmarkFanout: N WebSocket subscribers of copyLockChanged on one exam, one
// publisher. The server runs in a child process (this test binary, see
// TestFanoutServerProcess) so that its memory per idle connection is measured
// without the clients'; clients and server share this machine's cores.
// Reported: delivered/expected (%), p50/p99 publish→receive latency (ms), and
// server memory per idle connection holding one subscription (KB, heap+stacks
// in use after GC) and goroutines per connection. The CPU time of each process
// per event is reported too (server-cpu-ms/event, client-cpu-ms/event), so the
// share of the measuring clients, which run on the same cores, is visible.
// With KORRIGO_TEST_REDIS_URL the child uses the Redis broker. With
// KORRIGO_FANOUT_PPROF=dir the server writes heap-N.pprof and goroutine-N.pprof
// (idle, subscribed) and cpu-N.pprof (during the publishes) there.
// KORRIGO_FANOUT_N=1000,5000 replaces the list of N.
func BenchmarkFanout(b *testing.B) {
	sizes := []int{100, 1000, 5000}
	if v := os.Getenv("KORRIGO_FANOUT_N"); v != "" { // e.g. "5000" while profiling
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("KORRIGO_FANOUT_N: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		f := startFanout(b, n)
		b.Run(fmt.Sprintf("subscribers=%d", n), f.run)
		f.stop()
	}
}

type fanout struct {
	b        testing.TB
	n        int
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string
	setup    fanoutSetup
	conns    []*websocket.Conn
	perConnB float64
	perConnG float64
	// stackShare is the part of perConnB that is goroutine stacks.
	stackShare float64
	// liveB is perConnB counting live heap objects instead of the heap spans
	// in use: the difference is free space in spans that also hold live
	// objects, which after a burst of connections is about GOGC% of the
	// garbage their set-up made in the last GC cycle.
	liveB float64

	mu        sync.Mutex
	latencies []time.Duration
	received  atomic.Int64
}

type fanoutSetup struct {
	URL, Token, Exam, Broker string
}

func startFanout(b *testing.B, n int) *fanout {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutServerProcess$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), "KORRIGO_FANOUT_CHILD=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f := &fanout{b: b, n: n, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "FANOUT "); ok {
				f.lines <- line
			}
		}
		close(f.lines)
	}()
	if err := json.Unmarshal([]byte(f.reply(b)), &f.setup); err != nil {
		b.Fatal(err)
	}
	heap0, stack0, live0 := f.mem(b)
	gBefore := f.goroutines(b)

	url := "ws" + strings.TrimPrefix(f.setup.URL, "http") + "/graphql"
	f.conns = make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := f.connect(url)
			if err != nil {
				errs <- err
				return
			}
			f.conns[i] = c
			// Answer the server's pings from now on: connecting 5,000
			// sockets can outlast two ping intervals, after which a
			// silent client is dropped.
			go f.receive(c)
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("connect: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // let the server's per-connection work settle
	heap1, stack1, live1 := f.mem(b)
	f.perConnB = float64(heap1+stack1-heap0-stack0) / float64(n)
	f.stackShare = float64(stack1-stack0) / float64(heap1+stack1-heap0-stack0)
	f.liveB = float64(live1+stack1-live0-stack0) / float64(n)
	f.perConnG = float64(f.goroutines(b)-gBefore) / float64(n)
	if dir := os.Getenv("KORRIGO_FANOUT_PPROF"); dir != "" {
		f.command(b, fmt.Sprintf("profile %s %d", dir, n))
	}
	return f
}

func (f *fanout) reply(b testing.TB) string {
	select {
	case l, ok := <-f.lines:
		if !ok {
			b.Fatal("fanout server exited")
		}
		return l
	case <-time.After(time.Minute):
		b.Fatal("fanout server does not answer")
	}
	return ""
}

func (f *fanout) command(b testing.TB, c string) string {
	if _, err := io.WriteString(f.stdin, c+"\n"); err != nil {
		b.Fatal(err)
	}
	return f.reply(b)
}

// mem returns the server's heap spans and goroutine stacks in use, and its
// live heap objects.
func (f *fanout) mem(b testing.TB) (heap, stack, live int64) {
	var v [3]int64
	if err := json.Unmarshal([]byte(f.command(b, "mem")), &v); err != nil {
		b.Fatal(err)
	}
	return v[0], v[1], v[2]
}

func (f *fanout) goroutines(b testing.TB) int64 {
	v, err := strconv.ParseInt(f.command(b, "goroutines"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// cpu returns the user+system CPU time of the server process and of this one.
func (f *fanout) cpu(b testing.TB) (server, client time.Duration) {
	v, err := strconv.ParseInt(f.command(b, "cpu"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(v), selfCPU()
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// connect opens one socket, subscribes, and waits for the snapshot.
func (f *fanout) connect(url string) (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: time.Minute}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": bearer(f.setup.Token)})
	_ = c.WriteJSON(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{
		"query": `subscription($e: ID!){ copyLockChanged(examId: $e){ kind at } }`, "variables": map[string]any{"e": f.setup.Exam}}})
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return nil, err
		}
		if strings.Contains(string(data), `"error"`) {
			return nil, fmt.Errorf("subscribe: %s", data)
		}
		if strings.Contains(string(data), `"SNAPSHOT"`) {
			_ = c.SetReadDeadline(time.Time{})
			return c, nil
		}
	}
}

func (f *fanout) receive(c *websocket.Conn) {
	var m struct {
		Type    string
		Payload struct {
			Data struct {
				CopyLockChanged struct {
					Kind string
					At   time.Time
				}
			}
		}
	}
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		switch m.Type {
		case "ping":
			_ = c.WriteJSON(map[string]any{"type": "pong"})
		case "next":
			if m.Payload.Data.CopyLockChanged.Kind != "SNAPSHOT" {
				f.mu.Lock()
				f.latencies = append(f.latencies, now.Sub(m.Payload.Data.CopyLockChanged.At))
				f.mu.Unlock()
				f.received.Add(1)
			}
		}
	}
}

func (f *fanout) run(b *testing.B) {
	f.mu.Lock()
	f.latencies = f.latencies[:0]
	f.mu.Unlock()
	f.received.Store(0)
	want := int64(0)
	if dir := os.Getenv("KORRIGO_FANOUT_PPROF"); dir != "" {
		f.command(b, fmt.Sprintf("cpuprofile %s %d", dir, f.n))
	}
	srv0, cli0 := f.cpu(b)
	b.ResetTimer()
	for range b.N {
		want += int64(f.n)
		f.command(b, "publish")
		deadline := time.Now().Add(10 * time.Second)
		for f.received.Load() < want && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
	}
	b.StopTimer()
	time.Sleep(100 * time.Millisecond)
	srv1, cli1 := f.cpu(b)
	if os.Getenv("KORRIGO_FANOUT_PPROF") != "" {
		f.command(b, "stopcpu")
	}
	perEvent := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	f.mu.Lock()
	lat := slices.Clone(f.latencies)
	f.mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(100*float64(f.received.Load())/float64(want), "delivered%")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(f.perConnB/1024, "KB/idle-conn")
	b.ReportMetric(f.liveB/1024, "live-KB/idle-conn")
	b.ReportMetric(f.perConnG, "goroutines/conn")
	b.ReportMetric(perEvent(srv1-srv0), "server-cpu-ms/event")
	b.ReportMetric(perEvent(cli1-cli0), "client-cpu-ms/event")
	b.Logf("broker=%s subscribers=%d events=%d delivered=%d/%d p50=%.2fms p99=%.2fms server=%.1fKB/idle-conn "+
		"(%.0f%% stacks; live objects and stacks %.1fKB) %.2f goroutines/conn cpu/event: server %.1fms clients %.1fms",
		f.setup.Broker, f.n, b.N, f.received.Load(), want, pct(0.5), pct(0.99), f.perConnB/1024,
		100*f.stackShare, f.liveB/1024, f.perConnG, perEvent(srv1-srv0), perEvent(cli1-cli0))
}

func (f *fanout) stop() {
	for _, c := range f.conns {
		if c != nil {
			_ = c.Close()
		}
	}
	_ = f.stdin.Close()
	_ = f.cmd.Wait()
}

// TestFanoutServerProcess is BenchmarkFanout's server, in a child process. It
// does nothing in a normal test run. Commands on stdin: "mem" (heap and stacks
// in use after GC, bytes), "publish" (one lock event on the exam, stamped now).
func TestFanoutServerProcess(t *testing.T) {
	if os.Getenv("KORRIGO_FANOUT_CHILD") != "1" {
		t.Skip("BenchmarkFanout's server process")
	}
	if os.Getenv("KORRIGO_FANOUT_PPROF") != "" {
		runtime.MemProfileRate = 512 // an exact enough heap profile per connection
	}
	d := dbtest.Open(t, dialect.SQLite)
	cfg, err := server.LoadConfig(func(k string) string {
		switch k {
		case "KORRIGO_DATA_DIR":
			return t.TempDir()
		case "KORRIGO_REDIS_URL":
			return os.Getenv("KORRIGO_TEST_REDIS_URL")
		}
		// Every subscriber is the same user: the per-user limits stay on, high.
		return servertest.TestRateLimits[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := server.NewAppWithDB(cfg, zap.NewNop(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Broker.Close()
	srv := httptest.NewServer(app.Handler)
	defer srv.Close()
	e := &servertest.Env{T: t, DB: d, App: app, Server: srv, Statements: &servertest.Counter{}}
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	ex := e.NewExam(teacher)
	cp := e.NewCopy(ex, servertest.CopyOpts{Corrector: teacher})
	pub := realtime.NewPublisher(app.Broker, nil)

	out := func(v any) {
		raw, _ := json.Marshal(v)
		fmt.Printf("FANOUT %s\n", raw)
	}
	out(fanoutSetup{URL: srv.URL, Token: token, Exam: ex.ID, Broker: app.Broker.Name()})
	sc := bufio.NewScanner(os.Stdin)
	kinds := []grading.LockEventKind{grading.LockAcquired, grading.LockReleased}
	for i := 0; sc.Scan(); i++ {
		if dir, n, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "profile "), " "); ok && strings.HasPrefix(sc.Text(), "profile ") {
			for _, name := range []string{"heap", "goroutine"} {
				fh, err := os.Create(filepath.Join(dir, name+"-"+n+".pprof"))
				if err != nil {
					t.Fatal(err)
				}
				_ = pprof.Lookup(name).WriteTo(fh, 0)
				_ = fh.Close()
			}
			out("ok")
			continue
		}
		if dir, n, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cpuprofile "), " "); ok && strings.HasPrefix(sc.Text(), "cpuprofile ") {
			fh, err := os.Create(filepath.Join(dir, "cpu-"+n+".pprof"))
			if err != nil {
				t.Fatal(err)
			}
			// Back to the default rate: sampling every 512 bytes would
			// put the memory profiler itself at the top of the CPU profile.
			runtime.MemProfileRate = 512 * 1024
			_ = pprof.StartCPUProfile(fh)
			out("ok")
			continue
		}
		switch sc.Text() {
		case "mem":
			// A few cycles, as a running server has between events: each
			// one halves at most once the stacks that handshakes, auth and
			// snapshot queries grew, so two would overstate idle stacks.
			for range 5 {
				runtime.GC()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			out([]int64{int64(ms.HeapInuse), int64(ms.StackInuse), int64(ms.HeapAlloc)})
		case "goroutines":
			out(runtime.NumGoroutine())
		case "cpu":
			out(int64(selfCPU()))
		case "stopcpu":
			pprof.StopCPUProfile()
			out("ok")
		case "publish":
			pub.CopyLockChanged(context.Background(), grading.LockEvent{ExamID: ex.ID, CopyID: cp.ID,
				Kind: kinds[i%2], OwnerID: teacher.ID, OwnerName: teacher.Name,
				ExpiresAt: time.Now().Add(time.Minute), At: time.Now()})
			out("ok")
		}
	}
}
