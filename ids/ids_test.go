package ids

import "testing"

func TestNewAndTable(t *testing.T) {
	id := New(Copy)
	got, err := Table(id)
	if err != nil || got != "copies" {
		t.Fatalf("Table(%q) = %q, %v", id, got, err)
	}
	if New(Copy) == id {
		t.Fatal("two ids are equal")
	}
	if !Valid(id, Copy) || Valid(id, Exam) {
		t.Fatal("Valid does not check the prefix")
	}
	for _, bad := range []string{"", "cpy", "cpy_", "zzz_0123456789abcdefghjkmnpq", "cpy_short", "1 OR 1=1"} {
		if _, err := Table(bad); err == nil {
			t.Errorf("Table(%q) accepted a malformed id", bad)
		}
	}
}
