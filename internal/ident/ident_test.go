package ident

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{`a`: `"a"`, `My "T"`: `"My ""T"""`, ``: `""`} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got, want := Literal("it's"), `'it''s'`; got != want {
		t.Errorf("Literal = %s, want %s", got, want)
	}
}

func TestParseKey(t *testing.T) {
	tb, err := ParseKey("app.order items.v2")
	if err != nil || tb.Schema != "app" || tb.Name != "order items.v2" {
		t.Fatalf("ParseKey = %+v, %v", tb, err)
	}
	if tb.String() != `"app"."order items.v2"` {
		t.Fatalf("String = %s", tb.String())
	}
	if _, err := ParseKey("."); err == nil {
		t.Fatal("ParseKey(.) succeeded")
	}
	if tb, _ := ParseKey("t"); tb.Schema != "public" {
		t.Fatalf("default schema = %q", tb.Schema)
	}
}
