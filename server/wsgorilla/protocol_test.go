package wsgorilla

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// step is one message through the session: from the client (want is the
// verdict) or from gqlgen (wantSent is whether it reaches the client).
type step struct {
	fromServer bool
	data       string
	want       verdict
	wantSent   bool
}

func client(data string, want verdict) step { return step{data: data, want: want} }
func server(data string, sent bool) step    { return step{fromServer: true, data: data, wantSent: sent} }

var (
	fwd  = verdict{action: forward}
	drp  = verdict{action: drop}
	pong = verdict{action: replyPong}
)

const (
	initMsg = `{"type":"connection_init"}`
	ackMsg  = `{"type":"connection_ack"}`
	sub1    = `{"type":"subscribe","id":"1","payload":{"query":"subscription { a }"}}`
	done1   = `{"type":"complete","id":"1"}`
	next1   = `{"payload":{"data":{}},"id":"1","type":"next"}`
	err1    = `{"payload":[{"message":"x"}],"id":"1","type":"error"}`
)

func TestSessionTransportWS(t *testing.T) {
	tests := map[string][]step{
		"happy path": {
			client(initMsg, fwd), server(ackMsg, true),
			client(sub1, fwd), server(next1, true), server(done1, true),
			client(sub1, fwd), // id free again after the server's complete
		},
		"ping and pong before init are handled here": {
			client(`{"type":"ping"}`, pong), client(`{"type":"pong","payload":null}`, drp),
			client(initMsg, fwd), client(`{"type":"ping","payload":{"a":1}}`, fwd),
		},
		"complete before ack is dropped": {
			client(done1, drp),
		},
		"subscribe before ack": {
			client(initMsg, fwd), client(sub1, closeWith(4401, "Unauthorized")),
		},
		"second init": {
			client(initMsg, fwd), server(ackMsg, true),
			client(`{"type":"connection_init","payload":{}}`, closeWith(4429, "Too many initialisation requests")),
		},
		"duplicate id": {
			client(initMsg, fwd), server(ackMsg, true), client(sub1, fwd),
			client(sub1, closeWith(4409, "Subscriber for 1 already exists")),
		},
		"id free after error": {
			client(initMsg, fwd), server(ackMsg, true), client(sub1, fwd),
			server(err1, true), server(done1, false), // gqlgen's complete after error
			client(sub1, fwd),
		},
		// gqlgen answers the client's complete with its own complete; when it
		// comes after the id was reused it must not end the new operation.
		"reuse after client complete, stale complete late": {
			client(initMsg, fwd), server(ackMsg, true), client(sub1, fwd),
			client(done1, fwd), client(sub1, fwd),
			server(done1, false), // stale, swallowed
			server(next1, true),  // the new operation
			client(sub1, closeWith(4409, "Subscriber for 1 already exists")),
			server(done1, true), // the new operation ends
			client(sub1, fwd),
		},
		"reuse after client complete, stale complete early": {
			client(initMsg, fwd), server(ackMsg, true), client(sub1, fwd),
			client(done1, fwd), server(next1, false), server(done1, false),
			client(sub1, fwd), server(next1, true), server(done1, true),
		},
		"invalid messages": {
			client(`hello`, badRequest),
		},
	}
	invalid := []string{
		`[]`, `null`, `{"type":1}`, `{"type":"next","id":"1"}`, `{}`,
		`{"type":"connection_init","payload":"x"}`, `{"type":"ping","payload":[1]}`,
		`{"type":"subscribe","id":"1"}`, `{"type":"subscribe","payload":{"query":"{a}"}}`,
		`{"type":"subscribe","id":"1","payload":{"query":1}}`,
		`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}`,
		`{"type":"subscribe","id":2,"payload":{"query":"{a}"}}`,
		`{"type":"complete"}`,
	}
	for _, m := range invalid {
		tests["invalid "+m] = []step{client(initMsg, fwd), server(ackMsg, true), client(m, badRequest)}
	}
	runSteps(t, "graphql-transport-ws", tests)
}

func TestSessionLegacy(t *testing.T) {
	start1 := `{"type":"start","id":"1","payload":{"query":"subscription { a }"}}`
	runSteps(t, "graphql-ws", map[string][]step{
		"passes through what graphql-transport-ws would reject": {
			client(`hello`, fwd), client(`{"type":"start","id":"9"}`, fwd),
			client(initMsg, fwd), client(initMsg, fwd), client(`{"type":"whatever"}`, fwd),
		},
		"duplicate id": {
			client(initMsg, fwd), server(ackMsg, true), client(start1, fwd),
			client(start1, closeWith(4409, "Subscriber for 1 already exists")),
		},
		"id free after stop or complete": {
			client(initMsg, fwd), server(ackMsg, true), server(`{"type":"ka"}`, true),
			client(start1, fwd), server(`{"type":"data","id":"1","payload":{}}`, true),
			client(`{"type":"stop","id":"1"}`, fwd), server(done1, false),
			client(start1, fwd), server(done1, true), client(start1, fwd),
		},
	})
}

func runSteps(t *testing.T, protocol string, tests map[string][]step) {
	t.Helper()
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			s := newSession(dialects[protocol])
			for i, st := range steps {
				if st.fromServer {
					var m struct{ Type, ID string }
					if err := json.Unmarshal([]byte(st.data), &m); err != nil {
						t.Fatal(err)
					}
					if got := s.server(m.Type, m.ID); got != st.wantSent {
						t.Fatalf("step %d: server %s sent=%v, want %v", i, st.data, got, st.wantSent)
					}
					continue
				}
				if got := s.client([]byte(st.data)); got != st.want {
					t.Fatalf("step %d: client %s → %+v, want %+v", i, st.data, got, st.want)
				}
			}
		})
	}
}

func TestMergeSubprotocols(t *testing.T) {
	got := mergeSubprotocols(nil, []string{"graphql-ws", "graphql-transport-ws", "future"})
	want := []string{"graphql-transport-ws", "graphql-ws", "future"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Never advertise a protocol gqlgen does not speak.
	if got := mergeSubprotocols(nil, []string{"graphql-ws"}); !slices.Equal(got, []string{"graphql-ws"}) {
		t.Fatalf("got %v", got)
	}
}

func TestTruncateReason(t *testing.T) {
	long := "Subscriber for " + strings.Repeat("é", 100) + " already exists"
	got := truncateReason(long)
	if len(got) > maxCloseReasonLen || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Fatalf("bad truncation %q (%d bytes)", got, len(got))
	}
	if truncateReason("short") != "short" {
		t.Fatal("short reason changed")
	}
}

func TestAllowOrigins(t *testing.T) {
	check := AllowOrigins("https://app.example", " https://Other.example:8443 ", "not an origin")
	for origin, want := range map[string]bool{
		"":                           true, // not a browser
		"https://app.example":        true,
		"https://other.example:8443": true,
		"https://other.example":      false,
		"http://app.example":         false,
		"https://evil.example":       false,
		"null":                       false,
		"https://korrigo.example":    true, // same origin as the Host below
	} {
		r, _ := http.NewRequest(http.MethodGet, "https://korrigo.example/graphql", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if got := check(r); got != want {
			t.Errorf("origin %q: got %v, want %v", origin, got, want)
		}
	}
}

func TestAllowOriginsWildcards(t *testing.T) {
	check := AllowOrigins("https://*.school.example", "http://*.dev.example:5173")
	for origin, want := range map[string]bool{
		"https://app.school.example":      true,
		"https://a.b.school.example":      true,
		"https://APP.School.example":      true,
		"https://school.example":          false, // the domain itself is not a subdomain
		"https://evilschool.example":      false,
		"https://app.school.example.evil": false,
		"http://app.school.example":       false, // scheme
		"https://app.school.example:8443": false, // port
		"http://ui.dev.example:5173":      true,
		"http://ui.dev.example":           false,
		"https://ui.dev.example:5173":     false,
		"null":                            false,
		"https://korrigo.example":         true, // same origin
	} {
		r, _ := http.NewRequest(http.MethodGet, "https://korrigo.example/graphql", nil)
		r.Header.Set("Origin", origin)
		if got := check(r); got != want {
			t.Errorf("origin %q: got %v, want %v", origin, got, want)
		}
	}
	any := AllowOrigins("*")
	r, _ := http.NewRequest(http.MethodGet, "https://korrigo.example/graphql", nil)
	r.Header.Set("Origin", "https://anything.example")
	if !any(r) {
		t.Error(`"*" refused an origin`)
	}
}

func TestParseOrigin(t *testing.T) {
	for entry, wantWildcard := range map[string]bool{
		"https://app.example": false, "http://localhost:5173": false, "HTTPS://App.Example": false,
		"*": true, "https://*.school.example": true, "http://*.dev.example:5173": true,
	} {
		w, err := ParseOrigin(entry)
		if err != nil || w != wantWildcard {
			t.Errorf("%q: wildcard=%v err=%v", entry, w, err)
		}
	}
	for _, entry := range []string{
		"school.example", "ftp://school.example", "https://", "https://school.example/path",
		"https://*school.example", "https://app.*.example", "https://*.example*", "*.school.example",
		"https://*.com.", "https://*.localhost", "https://user@school.example", "**",
	} {
		if _, err := ParseOrigin(entry); err == nil {
			t.Errorf("%q accepted", entry)
		}
	}
}
