package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// gqlError is one GraphQL error of a response.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// Client speaks GraphQL over HTTP to one endpoint as one identity. The same
// code drives Korrigo and the raw net/http baseline.
type Client struct {
	HTTP  *http.Client
	URL   string
	Token string
}

// newHTTPClient pools enough keep-alive connections for the largest scenario.
func newHTTPClient() *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

func (c *Client) as(token string) *Client { return &Client{HTTP: c.HTTP, URL: c.URL, Token: token} }

// OpError is a failed operation with its error code.
type OpError struct {
	Code    string
	Message string
	Ext     map[string]any
}

func (e *OpError) Error() string { return e.Code + ": " + e.Message }

// codeOf is the error code of err: "" for nil, the extensions.code of a
// GraphQL error, TRANSPORT or HTTP_<status> otherwise.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*OpError); ok {
		return e.Code
	}
	return "TRANSPORT"
}

// Do posts one operation and decodes data into out (when non-nil).
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.send(req, out)
}

// Upload sends a GraphQL multipart request with one file in variable "file".
func (c *Client) Upload(ctx context.Context, query string, vars map[string]any, path string, out any) error {
	f, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return c.UploadBytes(ctx, query, vars, filepath.Base(path), f, out)
}

// UploadBytes is Upload of an in-memory file.
func (c *Client) UploadBytes(ctx context.Context, query string, vars map[string]any, name string, data []byte, out any) error {
	v := map[string]any{}
	for k, x := range vars {
		v[k] = x
	}
	v["file"] = nil
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": v})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0":["variables.file"]}`)
	fw, err := mw.CreateFormFile("0", name)
	if err != nil {
		return err
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Korrigo-Csrf", "1")
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) error {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return &OpError{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Message: truncate(string(raw), 200)}
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = "NO_CODE"
		}
		return &OpError{Code: code, Message: e.Message, Ext: e.Extensions}
	}
	if resp.StatusCode != http.StatusOK {
		return &OpError{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Message: truncate(string(raw), 200)}
	}
	if out != nil && len(r.Data) > 0 {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return fmt.Errorf("decode data: %w", err)
		}
	}
	return nil
}

// Timed runs Do and records its latency and outcome in rec.
func (c *Client) Timed(ctx context.Context, rec *Recorder, query string, vars map[string]any, out any) error {
	t := time.Now()
	err := c.Do(ctx, query, vars, out)
	rec.Add(time.Since(t), codeOf(err))
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
