package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"go.uber.org/zap/zaptest"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/server"
	"github.com/korrigo/korrigo/server/servertest"
)

// shortTimeout is the read/write timeout of serveWithTimeouts: each test
// outlives it by several times, and asserts behaviour, never speed.
const shortTimeout = 300 * time.Millisecond

// serveWithTimeouts runs App.Serve (the real http.Server) with short timeouts.
// The returned admin token comes from a second server over the same App
// without timeouts: a login (argon2id under -race) may itself take longer
// than shortTimeout.
func serveWithTimeouts(t *testing.T) (*servertest.Env, string) {
	t.Helper()
	d := dbtest.Open(t, dialect.SQLite)
	cfg, err := server.LoadConfig(func(k string) string {
		if k == "KORRIGO_DATA_DIR" {
			return t.TempDir()
		}
		return servertest.TestRateLimits[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReadHeaderTimeout = shortTimeout
	cfg.ReadTimeout = shortTimeout
	cfg.WriteTimeout = shortTimeout
	cfg.IdleTimeout = 4 * shortTimeout
	cfg.TransferTimeout = time.Minute
	app, err := server.NewAppWithDB(cfg, zaptest.NewLogger(t), d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		<-served
		_ = app.Close()
	})
	plain := httptest.NewServer(app.Handler)
	t.Cleanup(plain.Close)
	admin := (&servertest.Env{T: t, DB: d, App: app, Server: plain, Statements: &servertest.Counter{}}).Admin()
	return &servertest.Env{T: t, DB: d, App: app, Server: &httptest.Server{URL: "http://" + ln.Addr().String()},
		Statements: &servertest.Counter{}}, admin
}

// A client that sends its headers one line at a time, forever, is
// disconnected (ReadHeaderTimeout), while a normal request on the same server
// is answered.
func TestSlowlorisCutOff(t *testing.T) {
	e, _ := serveWithTimeouts(t)
	resp, err := http.Get(e.Server.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	conn, err := net.Dial("tcp", e.Server.URL[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: korrigo\r\n"); err != nil {
		t.Fatal(err)
	}
	// 1,000 header lines, one every 20 ms: the headers would end after 20 s,
	// if the server waited for them.
	trickled := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 1000; n++ {
			if _, err := io.WriteString(conn, "X-Slow: 1\r\n"); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		trickled <- n
	}()
	// Safety net only: the server is expected to hang up long before.
	_ = conn.SetReadDeadline(time.Now().Add(wsWait))
	got, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server still waiting for the headers after %s", wsWait)
	}
	if bytes.Contains(got, []byte("200 OK")) {
		t.Fatalf("server answered a request whose headers never ended: %q", got)
	}
	_ = conn.Close()
	if n := <-trickled; n >= 1000 {
		t.Fatalf("the slow client sent all its headers (%d lines) before being cut", n)
	}
}

// A JSON request whose body trickles in is cut by ReadTimeout.
func TestSlowBodyCutOff(t *testing.T) {
	e, _ := serveWithTimeouts(t)
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, `{"query":"{ __typename }"`)
		for range 100 { // 5 s of whitespace, 50 ms apart
			if _, err := io.WriteString(pw, " "); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, _ = io.WriteString(pw, "}")
		_ = pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, e.Server.URL+"/graphql", pr)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	_ = pr.CloseWithError(errors.New("test done"))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"__typename"`)) {
			t.Fatalf("a body trickling for 5 s was served past ReadTimeout (%s): %s", shortTimeout, body)
		}
	}
}

// An upload that streams for several read and write timeouts still gets its
// answer: uploads run under TransferTimeout.
func TestSlowUploadOutlivesReadTimeout(t *testing.T) {
	e, admin := serveWithTimeouts(t)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("operations", `{"query":"mutation($e: ID!, $f: Upload!) { uploadScan(examId: $e, file: $f) { id } }","variables":{"e":"exm_missing","f":null}}`)
		_ = mw.WriteField("map", `{"0":["variables.f"]}`)
		part, _ := mw.CreateFormFile("0", "scan.pdf")
		for range 20 { // ≈ 1 s, several times the read and write timeouts
			if _, err := part.Write(bytes.Repeat([]byte("%"), 1024)); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = mw.Close()
		_ = pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, e.Server.URL+"/graphql", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("slow upload cut off: %v", err)
	}
	defer resp.Body.Close()
	var out servertest.Response
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&out); err != nil {
		t.Fatalf("slow upload: status %d, undecodable answer: %v", resp.StatusCode, err)
	}
	if len(out.Errors) == 0 || out.Errors[0].Code() == "" {
		t.Fatalf("want a typed error for a missing exam, got %+v", out)
	}
}

// A WebSocket lives past the server's read and write timeouts: it idles for
// several of them, then still answers an operation.
func TestWebSocketOutlivesWriteTimeout(t *testing.T) {
	e, admin := serveWithTimeouts(t)
	c := mustDial(t, e, dialOpts{})
	c.init(bearer(admin))
	time.Sleep(5 * shortTimeout)
	id := c.subscribe(`query { me { email } }`, nil)
	var out struct{ Me struct{ Email string } }
	c.data(id, &out)
	if out.Me.Email != servertest.AdminEmail {
		t.Fatalf("me = %+v", out)
	}
}
