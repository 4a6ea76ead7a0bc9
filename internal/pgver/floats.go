package pgver

// FloatSend maps the built-in types whose text form is made of floats to their binary send
// function. Float output changed in PostgreSQL 12 (shortest exact digits instead of
// extra_float_digits' 17), so an 11 server and a newer one print equal values differently; the
// binary forms of these types are the same on every version, so they are what is compared.
var FloatSend = map[string]string{
	"double precision": "float8send", "real": "float4send",
	"point": "point_send", "line": "line_send", "lseg": "lseg_send", "box": "box_send",
	"path": "path_send", "polygon": "poly_send", "circle": "circle_send",
	"double precision[]": "array_send", "real[]": "array_send", "point[]": "array_send",
}
