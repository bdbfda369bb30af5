package wsgorilla

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Same shape as gqlgen's unexported message structs.
type fakeMsgType string

type fakeMsg struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    fakeMsgType     `json:"type"`
	noOp    bool
}

func TestEnvelopeEncodesLikeJSONMarshal(t *testing.T) {
	for _, m := range []*fakeMsg{
		{Type: "connection_ack"},
		{Type: "ping"},
		{ID: "1", Type: "complete"},
		{ID: "1", Type: "next", Payload: json.RawMessage(`{"data":{"a":"\u003cb\u003e"}}`)},
		{ID: `é"\<>&` + "\n", Type: "error", Payload: json.RawMessage(`[{"message":"x"}]`)},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		env, ok := readEnvelope(m)
		if !ok {
			t.Fatalf("%+v not read as an envelope", m)
		}
		if got := env.appendTo(nil); !bytes.Equal(got, want) {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	type other struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
		Extra   string          `json:"extra"`
	}
	for _, v := range []any{&other{Type: "x"}, map[string]string{"type": "x"}, fakeMsg{Type: "x"}, (*fakeMsg)(nil)} {
		if _, ok := readEnvelope(v); ok {
			t.Errorf("%T read as an envelope", v)
		}
	}
}
