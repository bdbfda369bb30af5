package wsgorilla

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
)

// envelope is what gqlgen hands WriteJSON: its unexported message structs of
// both subprotocols have the same exported fields,
//
//	Payload json.RawMessage `json:"payload,omitempty"`
//	ID      string          `json:"id,omitempty"`
//	Type    <string type>   `json:"type"`
//
// Reading them by reflection lets the adapter write each message without a
// second pass over the payload: json.Marshal would re-validate the payload
// (already encoded by gqlgen's own json.Marshal) and the session needs only the
// type and id, not a decode of the whole message. With one subscriber per
// socket, that is a marshal and an unmarshal per event per subscriber saved.
type envelope struct {
	payload []byte
	id, typ string
}

type envelopeFields struct {
	ok                bool
	payload, id, typ  int
	payloadIsRawBytes bool
}

var (
	envelopeTypes sync.Map // reflect.Type → envelopeFields
	rawMessage    = reflect.TypeFor[json.RawMessage]()
)

func fieldsOf(t reflect.Type) envelopeFields {
	if f, ok := envelopeTypes.Load(t); ok {
		return f.(envelopeFields)
	}
	f := envelopeFields{}
	p, okP := t.FieldByName("Payload")
	id, okI := t.FieldByName("ID")
	typ, okT := t.FieldByName("Type")
	f.ok = okP && okI && okT && len(p.Index) == 1 && len(id.Index) == 1 && len(typ.Index) == 1 &&
		p.Type == rawMessage && p.Tag.Get("json") == "payload,omitempty" &&
		id.Type.Kind() == reflect.String && id.Tag.Get("json") == "id,omitempty" &&
		typ.Type.Kind() == reflect.String && typ.Tag.Get("json") == "type"
	if f.ok {
		f.payload, f.id, f.typ = p.Index[0], id.Index[0], typ.Index[0]
		// Any other exported field would be lost: fall back to json.Marshal.
		for i := range t.NumField() {
			if sf := t.Field(i); sf.IsExported() && i != f.payload && i != f.id && i != f.typ {
				f.ok = false
			}
		}
	}
	envelopeTypes.Store(t, f)
	return f
}

// readEnvelope returns the fields of one of gqlgen's messages, or false for
// anything else.
func readEnvelope(v any) (envelope, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return envelope{}, false
	}
	e := rv.Elem()
	f := fieldsOf(e.Type())
	if !f.ok {
		return envelope{}, false
	}
	return envelope{payload: e.Field(f.payload).Bytes(), id: e.Field(f.id).String(),
		typ: e.Field(f.typ).String()}, true
}

// appendTo writes the message as json.Marshal would (same field order, same
// omissions). The payload is trusted to be valid JSON: gqlgen produced it
// with json.Marshal.
func (m envelope) appendTo(b []byte) []byte {
	b = append(b, '{')
	if len(m.payload) > 0 {
		b = append(b, `"payload":`...)
		b = append(b, m.payload...)
		b = append(b, ',')
	}
	if m.id != "" {
		b = append(b, `"id":`...)
		b = appendString(b, m.id)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = appendString(b, m.typ)
	return append(b, '}')
}

// encodeBuffers recycles the buffers messages are encoded into before gorilla
// frames them; a buffer grown past maxPooledBuffer (a large snapshot) is
// dropped instead.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBuffer = 64 << 10

// appendString quotes s; ids come from the client, so anything but plain
// ASCII goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil {
				panic(fmt.Sprintf("wsgorilla: quote %q: %v", s, err)) // a string always marshals
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
