package sqllex

import (
	"strings"
)

// Kind is the kind of a piece of a script.
type Kind int

// Piece kinds.
const (
	Space     Kind = iota // whitespace and comments between statements
	Statement             // one SQL statement up to and including its ';'
	Meta                  // a psql meta-command line such as \connect or \restrict, with its newline
	CopyData              // the data lines after COPY ... FROM stdin, up to and including the \. line
)

func (k Kind) String() string {
	switch k {
	case Space:
		return "space"
	case Statement:
		return "statement"
	case Meta:
		return "meta-command"
	case CopyData:
		return "copy data"
	}
	return "unknown"
}

// Piece is a run of the input; joining every piece in order gives the input back byte for byte.
type Piece struct {
	Kind Kind
	Text string
	Line int // 1-based line of the first byte
	// Unterminated is set on a final statement that has no ';' before the end of the input.
	Unterminated bool
}

// Join concatenates the pieces' text.
func Join(pieces []Piece) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(p.Text)
	}
	return b.String()
}

// Split cuts a psql script into pieces the way psql reads it: statements end at a ';' outside
// quotes, comments, parentheses and BEGIN ATOMIC bodies; a backslash at the start of a statement
// starts a meta-command that runs to the end of its line; COPY FROM stdin is followed by data up
// to a \. line. On a lexical error (an unterminated quote or comment, a NUL byte) the pieces still
// cover the whole input: the rest of the input after the last complete piece is one final
// statement piece, and the error names the line where the broken token starts.
func Split(src string) ([]Piece, error) {
	if i := strings.IndexByte(src, 0); i >= 0 {
		return []Piece{{Kind: Statement, Text: src, Line: 1, Unterminated: true}},
			&Error{Line: lineOf(src, i), Msg: "NUL byte: the input is binary, not SQL text"}
	}
	sp := &splitter{src: src, sc: &scanner{s: src, line: 1}}
	err := sp.run()
	return sp.pieces, err
}

type splitter struct {
	src    string
	sc     *scanner
	pieces []Piece
	start  int // start of the pending piece
	line   int // line of the pending piece
	kind   Kind
	st     stmtState // of the statement being read
}

// stmtState is what the splitter tracks inside one statement, reset at each statement start.
type stmtState struct {
	in         bool
	paren      int
	beginDepth int
	words      int
	lead       [4]byte // first letters of CREATE/OR/REPLACE/FUNCTION/PROCEDURE in leading position
	first      []string
}

// emit closes the pending piece at end.
func (sp *splitter) emit(end int) {
	if end > sp.start {
		sp.pieces = append(sp.pieces, Piece{Kind: sp.kind, Text: sp.src[sp.start:end], Line: sp.line})
	}
	sp.start = end
}

func (sp *splitter) run() error {
	sc := sp.sc
	sp.kind, sp.line = Space, 1
	for {
		tokStart, tokLine := sc.i, sc.line
		tok, ok, err := sc.next()
		if err != nil {
			if !sp.st.in {
				sp.emit(tokStart)
				sp.kind, sp.line = Statement, tokLine
			}
			sp.start = min(sp.start, len(sp.src))
			sp.pieces = append(sp.pieces, Piece{Kind: Statement, Text: sp.src[sp.start:], Line: sp.line, Unterminated: true})
			return err
		}
		if !ok {
			break
		}
		switch tok.Kind {
		case TSpace, TLineComment, TBlockComment:
			continue
		}
		if !sp.st.in {
			sp.emit(tok.Pos)
			sp.line = tok.Line
			if tok.Kind == TBackslash {
				sp.metaCommand()
				continue
			}
			sp.st = stmtState{in: true, first: sp.st.first[:0]}
			sp.kind = Statement
		}
		if err := sp.token(tok); err != nil {
			return err
		}
	}
	if sp.st.in {
		sp.pieces = append(sp.pieces, Piece{Kind: Statement, Text: sp.src[sp.start:], Line: sp.line, Unterminated: true})
		return nil
	}
	sp.emit(len(sp.src))
	return nil
}

// metaCommand reads a psql meta-command, which runs to the end of its line.
func (sp *splitter) metaCommand() {
	sc := sp.sc
	sp.kind = Meta
	end := strings.IndexByte(sp.src[sc.i:], '\n')
	if end < 0 {
		sc.i = len(sp.src)
	} else {
		sc.i += end + 1
		sc.line++
	}
	sp.emit(sc.i)
	sp.kind, sp.line = Space, sc.line
}

// token follows one significant token of a statement; a ';' that ends the statement emits it
// (and reads the data of a COPY FROM stdin).
func (sp *splitter) token(tok Token) error {
	st := &sp.st
	switch tok.Kind {
	case TWord:
		st.word(strings.ToLower(tok.Text))
	case TPunct:
		switch tok.Text {
		case "(":
			st.paren++
		case ")":
			if st.paren > 0 {
				st.paren--
			}
		}
	case TSemicolon:
		if st.paren > 0 || st.beginDepth > 0 {
			return nil
		}
		st.in = false
		text := sp.src[sp.start:sp.sc.i]
		sp.emit(sp.sc.i)
		sp.kind, sp.line = Space, sp.sc.line
		sp.afterStatement(text, st.first)
		if isCopyFromStdin(text, st.first) {
			return sp.copyData()
		}
	}
	return nil
}

// word follows a word of the statement: the heuristic psql uses to keep BEGIN ATOMIC ... END
// bodies of CREATE [OR REPLACE] FUNCTION|PROCEDURE in one statement.
func (st *stmtState) word(w string) {
	if len(st.first) < 4 {
		st.first = append(st.first, w)
	}
	switch w {
	case "create", "function", "procedure", "or", "replace":
		if st.words < len(st.lead) {
			st.lead[st.words] = w[0]
		}
	}
	st.words++
	lead := st.lead
	if lead[0] != 'c' || !(lead[1] == 'f' || lead[1] == 'p' || lead[1] == 'o' && lead[2] == 'r' && (lead[3] == 'f' || lead[3] == 'p')) || st.paren != 0 {
		return
	}
	switch w {
	case "begin":
		st.beginDepth++
	case "case":
		if st.beginDepth >= 1 {
			st.beginDepth++
		}
	case "end":
		if st.beginDepth > 0 {
			st.beginDepth--
		}
	}
}

// afterStatement follows SET standard_conforming_strings, which changes how later strings lex.
func (sp *splitter) afterStatement(text string, first []string) {
	if len(first) < 2 || first[0] != "set" || first[1] != "standard_conforming_strings" {
		return
	}
	toks := Significant(text)
	for _, t := range toks[2:] {
		v := strings.ToLower(strings.Trim(t.Text, "'"))
		switch v {
		case "off", "false":
			sp.sc.backslashEscapes = true
			return
		case "on", "true":
			sp.sc.backslashEscapes = false
			return
		}
	}
}

func isCopyFromStdin(text string, first []string) bool {
	if len(first) == 0 || first[0] != "copy" {
		return false
	}
	toks := Significant(text)
	for i := 0; i+1 < len(toks); i++ {
		if strings.EqualFold(toks[i].Text, "from") && strings.EqualFold(toks[i+1].Text, "stdin") {
			return true
		}
	}
	return false
}

// copyData consumes the rest of the COPY line and the data lines up to and including "\.".
func (sp *splitter) copyData() error {
	sc := sp.sc
	nl := strings.IndexByte(sp.src[sc.i:], '\n')
	if nl < 0 {
		return nil // COPY at the very end: no data follows
	}
	sc.i += nl + 1
	sc.line++
	sp.emit(sc.i)
	sp.kind, sp.line = CopyData, sc.line
	for sc.i < len(sp.src) {
		end := strings.IndexByte(sp.src[sc.i:], '\n')
		var ln string
		next := len(sp.src)
		if end < 0 {
			ln = sp.src[sc.i:]
		} else {
			ln = sp.src[sc.i : sc.i+end]
			next = sc.i + end + 1
		}
		sc.i = next
		if end >= 0 {
			sc.line++
		}
		if strings.TrimSuffix(ln, "\r") == `\.` {
			sp.emit(sc.i)
			sp.kind, sp.line = Space, sc.line
			return nil
		}
	}
	line := sp.line
	sp.emit(len(sp.src))
	return &Error{Line: line, Msg: `COPY data without its terminating \. line`}
}
