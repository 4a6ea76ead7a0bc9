package capture

import "encoding/json"

// MarshalJSON writes the table as docs/json.md names tables everywhere: "table" is the unquoted
// "schema.table", with "schema" and "name" beside it.
func (c Captured) MarshalJSON() ([]byte, error) {
	type fields Captured // without this method
	return json.Marshal(struct {
		Table  string `json:"table"`
		Schema string `json:"schema"`
		Name   string `json:"name"`
		fields
	}{c.Table.Key(), c.Table.Schema, c.Table.Name, fields(c)})
}
