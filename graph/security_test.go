package graph_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/korrigo/korrigo/db/dbtest"
	"github.com/korrigo/korrigo/ent/user"
	"github.com/korrigo/korrigo/server/servertest"
)

// wantTooComplex asserts r is refused with QUERY_TOO_COMPLEX for rule, with
// the limit and the measured value in the extensions.
func wantTooComplex(t *testing.T, r servertest.Response, rule string, limit, value int) {
	t.Helper()
	if len(r.Errors) != 1 || r.Errors[0].Code() != "QUERY_TOO_COMPLEX" {
		t.Fatalf("%s: want one QUERY_TOO_COMPLEX, got status %d %+v (data %s)", rule, r.Status, r.Errors, r.Data)
	}
	ext := r.Errors[0].Extensions
	if ext["rule"] != rule || ext["limit"] != float64(limit) || (value >= 0 && ext["value"] != float64(value)) {
		t.Fatalf("%s: extensions %v, want rule %s limit %d value %d", rule, ext, rule, limit, value)
	}
	if len(r.Data) > 0 && string(r.Data) != "null" {
		t.Fatalf("%s: data %s returned with the refusal", rule, r.Data)
	}
}

func TestQueryLimits(t *testing.T) {
	env := servertest.New(t, dbtest.Open(t, dialect.SQLite))
	_, token := env.NewUser(user.RoleTEACHER, "Maud")
	c := env.As(token)

	// Depth: exams(1) edges(2) node(3) copies(4) edges(5) node(6) exam(7)
	// correctors(8) pageInfo(9) hasNextPage(10) is 10.
	depth10 := `{ exams(first: 1) { edges { node { copies(first: 1) { edges { node { exam { correctors(first: 1) { pageInfo { hasNextPage } } } } } } } } } }`
	if r := c.Do(depth10, nil); len(r.Errors) != 0 {
		t.Fatalf("depth 10 refused: %+v", r.Errors)
	}
	depth11 := `{ exams(first: 1) { edges { node { copies(first: 1) { edges { node { exam { correctors(first: 1) { edges { node { id } } } } } } } } } } }`
	wantTooComplex(t, c.Do(depth11, nil), "depth", 10, 11)

	// Depth counts through fragments and inline fragments.
	viaFragments := `query { ...Q } fragment Q on Query { exams(first: 1) { edges { node { ... on Exam { copies(first: 1) { edges { node { ...C } } } } } } } } fragment C on Copy { exam { correctors(first: 1) { edges { node { id } } } } }`
	wantTooComplex(t, c.Do(viaFragments, nil), "depth", 10, 11)

	// Aliases: 15 pass, 16 do not (fragments expanded: 8 aliases spread twice).
	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: me { id }", i)
		}
		b.WriteString(" }")
		return b.String()
	}
	if r := c.Do(aliases(15), nil); len(r.Errors) != 0 {
		t.Fatalf("15 aliases refused: %+v", r.Errors)
	}
	wantTooComplex(t, c.Do(aliases(16), nil), "aliases", 15, 16)
	frag := `query { me { ...F } x: me { ...F } } fragment F on User { a: id b: id c: id d: id e: id f: id g: id h: id }`
	wantTooComplex(t, c.Do(frag, nil), "aliases", 15, 17)

	// Page size: first/last above 100, literal or variable.
	wantTooComplex(t, c.Do(`{ exams(first: 1000) { totalCount } }`, nil), "pageSize", 100, 1000)
	wantTooComplex(t, c.Do(`query($n: Int) { exams(last: $n) { totalCount } }`, map[string]any{"n": 101}), "pageSize", 100, 101)
	if r := c.Do(`query($n: Int) { exams(first: $n) { totalCount } }`, map[string]any{"n": 100}); len(r.Errors) != 0 {
		t.Fatalf("first: 100 refused: %+v", r.Errors)
	}

	// Complexity: connections cost first × (edges, nodes); 100 × 100 nested is refused.
	big := `{ exams(first: 100) { edges { node { copies(first: 100) { edges { node { id } } } } } } }`
	r := c.Do(big, nil)
	wantTooComplex(t, r, "complexity", 5000, -1)
	if v := r.Errors[0].Extensions["value"].(float64); v < 10000 {
		t.Fatalf("complexity of 100×100 copies measured %v", v)
	}
	// The same shape with small pages passes, and totalCount is not multiplied.
	if r := c.Do(`{ exams(first: 100) { totalCount edges { node { copies(first: 10) { totalCount edges { node { id anonymousId } } } } } } }`, nil); len(r.Errors) != 0 {
		t.Fatalf("a 100 × 10 query refused: %+v", r.Errors)
	}
	// Connections without first count the default page (50): 50 × 50 × 3 is too much.
	wantTooComplex(t, c.Do(`{ exams { edges { node { copies { edges { node { id anonymousId status } } } } } } }`, nil), "complexity", 5000, -1)

	// A fragment bomb is measured in linear time and refused.
	var bomb strings.Builder
	bomb.WriteString("query { ...F0 }\n")
	for i := range 30 {
		fmt.Fprintf(&bomb, "fragment F%d on Query { exams(first: 2) { edges { node { id } } } ...F%d ...F%d }\n", i, i+1, i+1)
	}
	bomb.WriteString("fragment F30 on Query { me { id } }\n")
	wantTooComplex(t, c.Do(bomb.String(), nil), "complexity", 5000, -1)

	// Document length: 20,000 characters (a long comment parses in few tokens).
	long := "{ me { id } }\n#" + strings.Repeat("x", 20000-15)
	if len(long) != 20000 {
		t.Fatalf("test query is %d long", len(long))
	}
	wantTooComplex(t, c.Do(long, nil), "length", 15000, 20000)
	// …and one made of many tokens is refused the same way, before parsing.
	many := "{" + strings.Repeat(" __typename", 20000/11) + " }"
	wantTooComplex(t, c.Do(many, nil), "length", 15000, len(many))
	wantTooComplex(t, env.Anonymous().Do(long, nil), "length", 15000, 20000)

	// Batches (a JSON array of operations) are refused: one operation per request.
	resp, err := http.Post(env.Server.URL+"/graphql", "application/json",
		strings.NewReader(` [{"query":"{ me { id } }"},{"query":"{ me { id } }"}]`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"QUERY_TOO_COMPLEX"`) ||
		!strings.Contains(string(body), `"value":2`) {
		t.Fatalf("batch: %d %s", resp.StatusCode, body)
	}

	// GraphiQL's introspection query (7 nested ofType) is within the limits.
	if r := env.Anonymous().Do(introspectionQuery, nil); len(r.Errors) != 0 {
		t.Fatalf("introspection refused: %+v", r.Errors)
	}
	// …but an introspection cycle is refused (gqlparser's introspection depth
	// rule answers first; the depth limit would too).
	cycle := `{ __schema { types { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } }`
	if r := env.Anonymous().Do(cycle, nil); len(r.Errors) == 0 || (len(r.Data) > 0 && string(r.Data) != "null") {
		t.Fatalf("introspection cycle answered: %s %+v", r.Data, r.Errors)
	}
}

// introspectionQuery is graphql-js's getIntrospectionQuery() (v16), as GraphiQL sends it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// raw sends one HTTP request to the test server and returns the response with
// its body read.
func raw(t *testing.T, env *servertest.Env, method, path, contentType, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, env.Server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// sessionCookie logs in through the API and returns the session cookie it set.
func sessionCookie(t *testing.T, env *servertest.Env, email string) *http.Cookie {
	t.Helper()
	resp := env.PostRaw(`mutation($e:String!,$p:String!){ login(email:$e, password:$p){ expiresAt } }`,
		map[string]any{"e": email, "p": servertest.Password})
	for _, c := range resp.Cookies() {
		if c.Name == "korrigo_session" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("login set no session cookie (status %d)", resp.StatusCode)
	return nil
}

func TestCSRF(t *testing.T) {
	env := servertest.New(t, dbtest.Open(t, dialect.SQLite))
	env.Admin()
	cookie := sessionCookie(t, env, servertest.AdminEmail)
	withCookie := http.Header{"Cookie": {cookie.String()}}
	create := `{"query":"mutation { createExam(input: {name: \"CSRF\", date: \"2026-11-20\", pagesPerBooklet: 2}) { id } }"}`
	exams := func() int {
		n, err := env.DB.Client.Exam.Query().Count(env.Ctx())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Simple requests a foreign page can send with the user's cookie.
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", ""} {
		resp, body := raw(t, env, http.MethodPost, "/graphql", ct, create, withCookie)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"FORBIDDEN"`) || !strings.Contains(body, `"CSRF"`) {
			t.Errorf("%q with cookie: %d %s", ct, resp.StatusCode, body)
		}
	}
	// A multipart mutation without the preflight header (uploads' own guard).
	multipart := "--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n" + create + "\r\n--b\r\n" +
		"Content-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n--b--\r\n"
	if resp, body := raw(t, env, http.MethodPost, "/graphql", "multipart/form-data; boundary=b", multipart, withCookie); resp.StatusCode < 400 || !strings.Contains(body, `"FORBIDDEN"`) {
		t.Errorf("multipart without preflight: %d %s", resp.StatusCode, body)
	}
	// GET never runs a mutation, cookie or not.
	q := "/graphql?query=" + strings.ReplaceAll(`mutation{createExam(input:{name:"GET",date:"2026-11-20",pagesPerBooklet:2}){id}}`, " ", "")
	if resp, body := raw(t, env, http.MethodGet, q, "", "", withCookie); resp.StatusCode < 400 || strings.Contains(body, `"createExam":{`) {
		t.Errorf("GET mutation: %d %s", resp.StatusCode, body)
	}
	// Other methods are refused.
	if resp, _ := raw(t, env, http.MethodPut, "/graphql", "application/json", create, withCookie); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", resp.StatusCode)
	}
	if n := exams(); n != 0 {
		t.Fatalf("%d exams created by refused requests", n)
	}

	// Non-simple requests go through: JSON, the multipart preflight header, and
	// the GraphQL GET of a query.
	if resp, body := raw(t, env, http.MethodPost, "/graphql", "application/json", create, withCookie); resp.StatusCode != 200 || !strings.Contains(body, `"createExam":{"id"`) {
		t.Fatalf("JSON with cookie: %d %s", resp.StatusCode, body)
	}
	if resp, body := raw(t, env, http.MethodGet, "/graphql?query=%7Bme%7Bemail%7D%7D", "", "", withCookie); resp.StatusCode != 200 || !strings.Contains(body, servertest.AdminEmail) {
		t.Fatalf("GET query with cookie: %d %s", resp.StatusCode, body)
	}
	if n := exams(); n != 1 {
		t.Fatalf("%d exams, want 1", n)
	}
	// A Bearer token is exempt (no ambient credential): a text/plain POST gets
	// past the guard, and gqlgen has no transport for it.
	resp, body := raw(t, env, http.MethodPost, "/graphql", "text/plain", create, http.Header{"Authorization": {"Bearer " + env.Admin()}})
	if strings.Contains(body, `"CSRF"`) || resp.StatusCode == http.StatusForbidden {
		t.Fatalf("bearer text/plain treated as CSRF: %d %s", resp.StatusCode, body)
	}
}

func checkSecurityHeaders(t *testing.T, what string, resp *http.Response, production bool) {
	t.Helper()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
		!strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: CSP %q", what, csp)
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
	if hsts := h.Get("Strict-Transport-Security"); production != strings.Contains(hsts, "max-age=") {
		t.Errorf("%s: production=%v, HSTS %q", what, production, hsts)
	}
}

func TestSecurityHeaders(t *testing.T) {
	for _, production := range []bool{false, true} {
		env := servertest.NewWithEnv(t, dbtest.Open(t, dialect.SQLite), map[string]string{
			"KORRIGO_ENV":           map[bool]string{false: "development", true: "production"}[production],
			"KORRIGO_METRICS_TOKEN": "a-metrics-token-of-some-length",
		})
		env.Admin()
		for _, x := range []struct{ method, path, ct, body string }{
			{"POST", "/graphql", "application/json", `{"query":"{ me { id } }"}`},
			{"POST", "/graphql", "text/plain", `{"query":"{ me { id } }"}`},
			{"GET", "/graphql?query=%7B__typename%7D", "", ""},
			{"GET", "/healthz", "", ""},
			{"GET", "/readyz", "", ""},
			{"GET", "/no-such-page", "", ""},
			{"GET", "/graphiql", "", ""},
			{"GET", "/graphiql/app.js", "", ""},
		} {
			resp, _ := raw(t, env, x.method, x.path, x.ct, x.body, nil)
			checkSecurityHeaders(t, fmt.Sprintf("production=%v %s %s", production, x.method, x.path), resp, production)
		}
		// The session cookie is HttpOnly, SameSite=Lax, and Secure in production.
		c := sessionCookie(t, env, servertest.AdminEmail)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != production {
			t.Errorf("production=%v: cookie HttpOnly=%v SameSite=%v Secure=%v", production, c.HttpOnly, c.SameSite, c.Secure)
		}
	}
}

func TestGraphiQL(t *testing.T) {
	env := servertest.New(t, dbtest.Open(t, dialect.SQLite))
	resp, page := raw(t, env, http.MethodGet, "/graphiql", "", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/graphiql: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	i := strings.Index(csp, "'nonce-")
	if i < 0 || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
		t.Fatalf("GraphiQL CSP %q", csp)
	}
	nonce := csp[i+len("'nonce-") : i+strings.Index(csp[i+1:], "'")+1]
	if strings.Count(page, `nonce="`+nonce+`"`) != 6 || strings.Count(page, "<script") != 4 {
		t.Fatalf("page does not carry the CSP nonce %q on every script and stylesheet:\n%s", nonce, page)
	}
	if _, again := raw(t, env, http.MethodGet, "/graphiql", "", "", nil); strings.Contains(again, nonce) {
		t.Fatal("the nonce is reused across requests")
	}
	if strings.Contains(page, "//unpkg") || strings.Contains(page, "cdn") || strings.Contains(page, "https://") {
		t.Fatal("the page loads something from outside")
	}
	// Every asset the page names is served from the binary.
	for _, name := range []string{"graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js", "app.js", "korrigo.css"} {
		if !strings.Contains(page, "/graphiql/"+name) {
			t.Errorf("page does not load %s", name)
		}
		resp, body := raw(t, env, http.MethodGet, "/graphiql/"+name, "", "", nil)
		if resp.StatusCode != 200 || len(body) < 20 {
			t.Errorf("%s: %d, %d bytes", name, resp.StatusCode, len(body))
		}
		want := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(name, ".js")]
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Errorf("%s: Content-Type %q", name, resp.Header.Get("Content-Type"))
		}
	}
	for _, name := range []string{"LICENSE.graphiql", "LICENSE.react"} {
		if resp, body := raw(t, env, http.MethodGet, "/graphiql/"+name, "", "", nil); resp.StatusCode != 200 || !strings.Contains(body, "MIT") {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	for _, name := range []string{"index.html", "../graphiql.go", "nope.js"} {
		if resp, _ := raw(t, env, http.MethodGet, "/graphiql/"+name, "", "", nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", name, resp.StatusCode)
		}
	}
	// Anonymous: the schema is open, the data is not.
	if r := env.Anonymous().Do(`{ __schema { queryType { name } } }`, nil); len(r.Errors) != 0 {
		t.Fatalf("anonymous introspection: %+v", r.Errors)
	}
	if r := env.Anonymous().Do(`{ exams { totalCount } }`, nil); len(r.Errors) == 0 || r.Errors[0].Code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous data: %s %+v", r.Data, r.Errors)
	}
}

// post sends a GraphQL operation as JSON from the client address xff (through
// the trusted proxy at 127.0.0.1) and decodes the answer.
func post(t *testing.T, env *servertest.Env, token, xff, query string, vars map[string]any) (*http.Response, servertest.Response) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	resp, raw := raw(t, env, http.MethodPost, "/graphql", "application/json", string(body), h)
	var out servertest.Response
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("status %d, body %q: %v", resp.StatusCode, raw, err)
	}
	out.Status = resp.StatusCode
	return resp, out
}

func wantRateLimited(t *testing.T, what string, resp *http.Response, r servertest.Response, limit int) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests || len(r.Errors) != 1 || r.Errors[0].Code() != "RATE_LIMITED" {
		t.Fatalf("%s: want 429 RATE_LIMITED, got %d %+v", what, resp.StatusCode, r.Errors)
	}
	retry, _ := r.Errors[0].Extensions["retryAfter"].(float64)
	if retry < 1 || retry > 60 || resp.Header.Get("Retry-After") != strconv.Itoa(int(retry)) {
		t.Fatalf("%s: retryAfter %v, Retry-After %q", what, r.Errors[0].Extensions["retryAfter"], resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || resp.Header.Get("X-RateLimit-Remaining") != "0" ||
		resp.Header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("%s: X-RateLimit headers %v", what, resp.Header)
	}
	if len(r.Data) > 0 && string(r.Data) != "null" {
		t.Fatalf("%s: data %s with the refusal", what, r.Data)
	}
}

func TestRateLimitsHTTP(t *testing.T) {
	env := servertest.NewWithEnv(t, dbtest.Open(t, dialect.SQLite), map[string]string{
		"KORRIGO_RATE_ANONYMOUS": "3-M", "KORRIGO_RATE_OPERATIONS": "12-M", "KORRIGO_RATE_MUTATIONS": "10-M",
		"KORRIGO_TRUSTED_PROXIES": "127.0.0.1, ::1",
	})
	// Setup: the admin's login and the teachers' logins come from 127.0.0.1
	// itself (no X-Forwarded-For), a different client from the ones below.
	env.Admin()
	_, teacher := env.NewUser(user.RoleTEACHER, "Anne")
	_, other := env.NewUser(user.RoleTEACHER, "Basile")

	// Anonymous: 3 per minute per client IP (the schema explorer's rule).
	introspect := `{ __schema { queryType { name } } }`
	for i := range 3 {
		resp, r := post(t, env, "", "198.51.100.7", introspect, nil)
		if len(r.Errors) != 0 || resp.Header.Get("X-RateLimit-Limit") != "3" ||
			resp.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("anonymous request %d: %+v, headers %v", i+1, r.Errors, resp.Header)
		}
	}
	resp, r := post(t, env, "", "198.51.100.7", introspect, nil)
	wantRateLimited(t, "4th anonymous request", resp, r, 3)
	// Invalid documents count too (charged before parsing).
	if resp, r := post(t, env, "", "198.51.100.7", `{ nonsense`, nil); resp.StatusCode != 429 || r.Errors[0].Code() != "RATE_LIMITED" {
		t.Fatalf("invalid document past the limit: %d %+v", resp.StatusCode, r.Errors)
	}
	// A client cannot escape by prepending addresses: the right-most untrusted hop counts.
	resp, r = post(t, env, "", "10.9.9.9, 198.51.100.7", introspect, nil)
	wantRateLimited(t, "spoofed X-Forwarded-For", resp, r, 3)
	// Another client behind the same proxy is not affected, nor a signed-in user.
	if _, r := post(t, env, "", "198.51.100.8", introspect, nil); len(r.Errors) != 0 {
		t.Fatalf("another client limited: %+v", r.Errors)
	}
	if _, r := post(t, env, teacher, "198.51.100.7", `{ me { id } }`, nil); len(r.Errors) != 0 {
		t.Fatalf("a signed-in user limited by the anonymous rule: %+v", r.Errors)
	}

	// Mutations are weighted per user: createApiToken costs 5 of 10.
	mut := `mutation($n: String!) { createApiToken(input: {name: $n}) { token } }`
	for i := range 2 {
		if _, r := post(t, env, teacher, "", mut, map[string]any{"n": fmt.Sprint("t", i)}); len(r.Errors) != 0 {
			t.Fatalf("mutation %d: %+v", i+1, r.Errors)
		}
	}
	resp, r = post(t, env, teacher, "", mut, map[string]any{"n": "t3"})
	wantRateLimited(t, "3rd weighted mutation", resp, r, 10)
	if n, _ := env.DB.Client.ApiToken.Query().Count(env.Ctx()); n != 2 {
		t.Fatalf("%d tokens created, want 2 (the refused mutation must not run)", n)
	}
	// Queries still go (their own bucket), another user's mutations too.
	if _, r := post(t, env, teacher, "", `{ me { id } }`, nil); len(r.Errors) != 0 {
		t.Fatalf("query after the mutation limit: %+v", r.Errors)
	}
	if _, r := post(t, env, other, "", mut, map[string]any{"n": "o"}); len(r.Errors) != 0 {
		t.Fatalf("another user's mutation: %+v", r.Errors)
	}

	// Every operation of a user counts against 12 per minute: the teacher has
	// sent 1 + 3 + 1 = 5 so far.
	for i := range 7 {
		if _, r := post(t, env, teacher, "", `{ me { id } }`, nil); len(r.Errors) != 0 {
			t.Fatalf("query %d: %+v", i+6, r.Errors)
		}
	}
	resp, r = post(t, env, teacher, "", `{ me { id } }`, nil)
	wantRateLimited(t, "13th operation", resp, r, 12)
}

func TestLoginLockoutBehindProxy(t *testing.T) {
	login := `mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token } }`
	for _, trusted := range []bool{true, false} {
		env := servertest.NewWithEnv(t, dbtest.Open(t, dialect.SQLite), map[string]string{
			"KORRIGO_TRUSTED_PROXIES": map[bool]string{true: "127.0.0.1,::1", false: ""}[trusted],
		})
		a, _ := env.NewUser(user.RoleTEACHER, "Agathe")
		b, _ := env.NewUser(user.RoleTEACHER, "Bruno")
		for i := range 5 {
			_, r := post(t, env, "", fmt.Sprintf("203.0.113.%d", 7+map[bool]int{true: 0, false: i}[trusted]), login,
				map[string]any{"e": a.Email, "p": "wrong password number " + strconv.Itoa(i)})
			if len(r.Errors) != 1 || r.Errors[0].Code() != "UNAUTHENTICATED" {
				t.Fatalf("failure %d: %+v", i+1, r.Errors)
			}
		}
		// The 6th attempt is refused even with the right password, as an HTTP 429.
		resp, r := post(t, env, "", "203.0.113.7", login, map[string]any{"e": a.Email, "p": servertest.Password})
		if len(r.Errors) != 1 || r.Errors[0].Code() != "RATE_LIMITED" || r.Errors[0].Extensions["retryAfter"] == nil {
			t.Fatalf("trusted=%v: 6th login: %+v", trusted, r.Errors)
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != fmt.Sprint(r.Errors[0].Extensions["retryAfter"]) {
			t.Fatalf("trusted=%v: locked-out login answered %d, Retry-After %q", trusted, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		// Another account behind the same proxy signs in.
		if _, r := post(t, env, "", "203.0.113.7", login, map[string]any{"e": b.Email, "p": servertest.Password}); len(r.Errors) != 0 {
			t.Fatalf("trusted=%v: another account locked out: %+v", trusted, r.Errors)
		}
		// The same account from another client behind the proxy: the lockout is
		// per account and client IP, so with a trusted proxy it signs in; without
		// one, X-Forwarded-For is ignored (all clients are the proxy) and it stays locked.
		_, r = post(t, env, "", "203.0.113.99", login, map[string]any{"e": a.Email, "p": servertest.Password})
		if trusted && len(r.Errors) != 0 {
			t.Fatalf("same account from another client locked out: %+v", r.Errors)
		}
		if !trusted && (len(r.Errors) != 1 || r.Errors[0].Code() != "RATE_LIMITED") {
			t.Fatalf("untrusted X-Forwarded-For escaped the lockout: %s %+v", r.Data, r.Errors)
		}
	}
}

func TestMetrics(t *testing.T) {
	const token = "metrics-token-0123456789"
	env := servertest.NewWithEnv(t, dbtest.Open(t, dialect.SQLite), map[string]string{
		"KORRIGO_ENV": "production", "KORRIGO_METRICS_TOKEN": token,
	})
	teacher, tok := env.NewUser(user.RoleTEACHER, "Mona")
	cp := env.NewCopy(env.NewExam(teacher), servertest.CopyOpts{Corrector: teacher})
	env.As(tok).MustDo(`{ me { id } }`, nil, nil)
	env.As(tok).Do(`{ exams(first: 1000) { totalCount } }`, nil)
	if r := env.As(tok).Do(`mutation($c: ID!) { setAppreciation(copyId: $c, lockToken: "not-a-lease", text: "Bien") { id } }`,
		map[string]any{"c": cp.ID}); len(r.Errors) != 1 || r.Errors[0].Code() != "LOCK_REQUIRED" {
		t.Fatalf("setAppreciation without a lease: %+v", r.Errors)
	}
	raw(t, env, http.MethodGet, "/healthz", "", "", nil)

	// Token-protected in production.
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}} {
		if resp, _ := raw(t, env, http.MethodGet, "/metrics", "", "", h); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/metrics with %v: %d", h, resp.StatusCode)
		}
	}
	resp, body := raw(t, env, http.MethodGet, "/metrics", "", "", http.Header{"Authorization": {"Bearer " + token}})
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`korrigo_http_requests_total{method="POST",route="/graphql",status="200"}`,
		`korrigo_http_requests_total{method="GET",route="/healthz",status="200"}`,
		`korrigo_http_request_duration_seconds_bucket{method="POST",route="/graphql",le="1"}`,
		`korrigo_graphql_operations_total{operation="me",outcome="ok",type="query"}`,
		`korrigo_graphql_operations_total{operation="exams",outcome="QUERY_TOO_COMPLEX",type="query"}`,
		`korrigo_graphql_operations_total{operation="login",outcome="ok",type="mutation"}`,
		`korrigo_graphql_operations_total{operation="setAppreciation",outcome="LOCK_REQUIRED",type="mutation"}`,
		`korrigo_graphql_operation_duration_seconds_count{operation="me",type="query"}`,
		`korrigo_lock_conflicts_total{kind="LOCK_REQUIRED"} 1`,
		`korrigo_websocket_connections 0`,
		`korrigo_graphql_subscriptions 0`,
		`go_sql_max_open_connections{db_name="korrigo"}`, // database pool
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "Mona") || strings.Contains(body, teacher.Email) {
		t.Fatal("/metrics leaks personal data")
	}
}
