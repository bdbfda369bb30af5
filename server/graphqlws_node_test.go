package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// nodeClient runs tools/wsclient/client.mjs (the npm packages graphql-ws and
// ws) against e, or skips when node or the packages are missing (`npm ci` in
// tools/wsclient; .ci/run does it).
func nodeClient(t *testing.T, e *servertest.Env, token, query string, vars map[string]any, count int) (lines <-chan map[string]any, wait func() error) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir, err := filepath.Abs(filepath.Join("..", "tools", "wsclient"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err != nil {
		t.Skip("graphql-ws is not installed: run `npm ci` in tools/wsclient")
	}
	rawVars, _ := json.Marshal(vars)
	ctx, cancel := context.WithTimeout(context.Background(), 2*wsWait)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KORRIGO_WS_URL=ws"+strings.TrimPrefix(e.Server.URL, "http")+"/graphql",
		"KORRIGO_TOKEN="+token,
		"KORRIGO_QUERY="+query,
		"KORRIGO_VARIABLES="+string(rawVars),
		"KORRIGO_COUNT="+strconv.Itoa(count),
		"KORRIGO_TIMEOUT_MS=40000",
	)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan map[string]any, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("node client printed %q", sc.Text())
				continue
			}
			ch <- m
		}
	}()
	return ch, cmd.Wait
}

func nextLine(t *testing.T, lines <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case m, ok := <-lines:
		if !ok {
			t.Fatal("node client exited early")
		}
		return m
	case <-time.After(2 * wsWait):
		t.Fatal("no output from the node client")
	}
	return nil
}

// A real third-party client (graphql-ws over ws, as a browser SPA would use)
// connects with a token, subscribes, gets the snapshot and then a change.
func TestGraphQLWSNodeClient(t *testing.T) {
	d := dbtest.Open(t, dialect.SQLite)
	e := newInstance(t, d, "", nil)
	teacher, token := e.NewUser(user.RoleTEACHER, "Marie")
	ex := e.NewExam(teacher)
	cp := e.NewCopy(ex, servertest.CopyOpts{Corrector: teacher})

	lines, wait := nodeClient(t, e, token, subLocks, map[string]any{"e": ex.ID}, 2)
	if m := nextLine(t, lines); m["connected"] != true {
		t.Fatalf("want connected, got %v", m)
	}
	snap := nextLine(t, lines)
	if kind := dig(snap, "data", "copyLockChanged", "kind"); kind != "SNAPSHOT" {
		t.Fatalf("want the SNAPSHOT first, got %v", snap)
	}
	acquire(t, e, token, cp.ID)
	ev := nextLine(t, lines)
	if dig(ev, "data", "copyLockChanged", "kind") != "ACQUIRED" || dig(ev, "data", "copyLockChanged", "copyId") != cp.ID {
		t.Fatalf("want ACQUIRED of %s, got %v", cp.ID, ev)
	}
	if err := wait(); err != nil {
		t.Fatalf("node client: %v", err)
	}

	// A forged token: graphql-ws reports the server's 4403 close.
	lines, wait = nodeClient(t, e, "ksess_forged", subLocks, map[string]any{"e": ex.ID}, 1)
	if m := nextLine(t, lines); m["closed"] != float64(4403) {
		t.Fatalf("want closed 4403, got %v", m)
	}
	_ = wait()
}

func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}
