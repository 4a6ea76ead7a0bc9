// Package sqllex splits psql scripts such as pg_dump output into statements, comments and meta-commands, byte for byte.
package sqllex

import (
	"fmt"
	"strings"
)

// TokKind is the kind of a lexical token.
type TokKind int

// Token kinds.
const (
	TSpace        TokKind = iota // whitespace
	TLineComment                 // -- comment, without its newline
	TBlockComment                // /* comment */, nested
	TWord                        // unquoted identifier or keyword
	TQuotedIdent                 // "identifier" or U&"identifier"
	TString                      // 'string', E'string', U&'string', B'..', X'..', N'..'
	TDollar                      // $tag$ string $tag$
	TNumber                      // numeric literal
	TParam                       // $1
	TPunct                       // any other character
	TSemicolon                   // ;
	TBackslash                   // \ outside quotes: starts a psql meta-command
)

// Token is one lexical token of SQL text.
type Token struct {
	Kind TokKind
	Text string
	Pos  int // byte offset in the scanned text
	Line int // 1-based line of the first byte
}

// Error is a lexical error at a line of the input.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// scanner walks text token by token.
type scanner struct {
	s    string
	i    int
	line int
	// backslashEscapes is true when standard_conforming_strings is off.
	backslashEscapes bool
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

// next returns the next token, or ok=false at the end of the text.
func (sc *scanner) next() (Token, bool, error) {
	if sc.i >= len(sc.s) {
		return Token{}, false, nil
	}
	start, line := sc.i, sc.line
	s := sc.s
	c := s[sc.i]
	kind := TPunct
	var err error
	switch {
	case c == 0:
		return Token{}, false, &Error{Line: line, Msg: "NUL byte: the input is binary, not SQL text"}
	case isSpace(c):
		for sc.i < len(s) && isSpace(s[sc.i]) {
			sc.i++
		}
		kind = TSpace
	case c == '-' && sc.peek(1) == '-':
		for sc.i < len(s) && s[sc.i] != '\n' {
			sc.i++
		}
		kind = TLineComment
	case c == '/' && sc.peek(1) == '*':
		kind = TBlockComment
		err = sc.blockComment()
	case c == '\'':
		kind = TString
		err = sc.quoted('\'', sc.backslashEscapes, "string literal")
	case c == '"':
		kind = TQuotedIdent
		err = sc.quoted('"', false, "quoted identifier")
	case (c == 'e' || c == 'E') && sc.peek(1) == '\'':
		sc.i++
		kind = TString
		err = sc.quoted('\'', true, "escape string literal")
	case (c == 'u' || c == 'U') && sc.peek(1) == '&' && (sc.peek(2) == '\'' || sc.peek(2) == '"'):
		q := s[sc.i+2]
		sc.i += 2
		kind = TString
		what := "Unicode string literal"
		if q == '"' {
			kind, what = TQuotedIdent, "Unicode quoted identifier"
		}
		err = sc.quoted(q, false, what)
	case isIdentStart(c):
		for sc.i < len(s) && isIdentChar(s[sc.i]) {
			sc.i++
		}
		kind = TWord
	case c >= '0' && c <= '9':
		for sc.i < len(s) && (isIdentChar(s[sc.i]) && s[sc.i] != '$' || s[sc.i] == '.') {
			sc.i++
		}
		kind = TNumber
	case c == '$':
		if d := sc.peek(1); d >= '0' && d <= '9' {
			sc.i++
			for sc.i < len(s) && s[sc.i] >= '0' && s[sc.i] <= '9' {
				sc.i++
			}
			kind = TParam
		} else if tag, ok := dollarTag(s[sc.i:]); ok {
			kind = TDollar
			err = sc.dollar(tag)
		} else {
			sc.i++
		}
	case c == ';':
		sc.i++
		kind = TSemicolon
	case c == '\\':
		sc.i++
		kind = TBackslash
	default:
		sc.i++
	}
	tok := Token{Kind: kind, Text: s[start:sc.i], Pos: start, Line: line}
	sc.line += strings.Count(tok.Text, "\n")
	return tok, true, err
}

func (sc *scanner) peek(n int) byte {
	if sc.i+n < len(sc.s) {
		return sc.s[sc.i+n]
	}
	return 0
}

// blockComment consumes a nested /* */ comment starting at sc.i.
func (sc *scanner) blockComment() error {
	line := sc.line
	depth := 0
	for sc.i < len(sc.s) {
		switch {
		case sc.s[sc.i] == '/' && sc.peek(1) == '*':
			depth++
			sc.i += 2
		case sc.s[sc.i] == '*' && sc.peek(1) == '/':
			depth--
			sc.i += 2
			if depth == 0 {
				return nil
			}
		default:
			sc.i++
		}
	}
	return &Error{Line: line, Msg: "unterminated /* comment: no matching */ before the end of the input"}
}

// quoted consumes a q-quoted token starting at sc.i (which holds q); doubled quotes escape,
// and backslashes escape when backslash is true.
func (sc *scanner) quoted(q byte, backslash bool, what string) error {
	line := sc.line
	sc.i++
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == 0:
			return &Error{Line: lineOf(sc.s, sc.i), Msg: "NUL byte: the input is binary, not SQL text"}
		case backslash && c == '\\':
			sc.i += 2
		case c == q:
			if sc.peek(1) == q {
				sc.i += 2
				continue
			}
			sc.i++
			return nil
		default:
			sc.i++
		}
	}
	sc.i = len(sc.s)
	return &Error{Line: line, Msg: fmt.Sprintf("unterminated %s: no closing %c before the end of the input", what, q)}
}

// lineOf returns the 1-based line of byte offset i in s.
func lineOf(s string, i int) int { return strings.Count(s[:i], "\n") + 1 }

// dollarTag returns the $tag$ at the start of s, if s starts with one.
func dollarTag(s string) (string, bool) {
	if len(s) < 2 || s[0] != '$' {
		return "", false
	}
	if s[1] == '$' {
		return "$$", true
	}
	if !isIdentStart(s[1]) {
		return "", false
	}
	for j := 2; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(isIdentStart(c) || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

// dollar consumes a dollar-quoted string opened by tag at sc.i.
func (sc *scanner) dollar(tag string) error {
	line := sc.line
	body := sc.i + len(tag)
	j := strings.Index(sc.s[body:], tag)
	if j < 0 {
		sc.i = len(sc.s)
		return &Error{Line: line, Msg: fmt.Sprintf("unterminated dollar-quoted string: no closing %s before the end of the input", tag)}
	}
	sc.i = body + j + len(tag)
	return nil
}

// Tokens returns the tokens of text, including spaces and comments, or the error that stopped the scan.
func Tokens(text string) ([]Token, error) {
	sc := &scanner{s: text, line: 1}
	var toks []Token
	for {
		t, ok, err := sc.next()
		if err != nil {
			return toks, err
		}
		if !ok {
			return toks, nil
		}
		toks = append(toks, t)
	}
}

// Significant returns the tokens of text without spaces and comments. Lexical errors end the list early.
func Significant(text string) []Token {
	toks, _ := Tokens(text)
	out := toks[:0]
	for _, t := range toks {
		if t.Kind != TSpace && t.Kind != TLineComment && t.Kind != TBlockComment {
			out = append(out, t)
		}
	}
	return out
}
