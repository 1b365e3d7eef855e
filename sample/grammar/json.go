package grammar

// JSON is a GBNF grammar for any JSON value (RFC 8259: object, array,
// string, number, true, false, null), to use with Parse.
//
// It accepts a subset of JSON texts, as llama.cpp's json.gbnf does, so
// that a model cannot loop forever: whitespace between tokens is at most
// one space, or a newline and up to 20 spaces or tabs (enough for pretty
// printing); an integer part has at most 16 digits; there is no whitespace
// before the value. Every text it accepts is valid JSON.
const JSON = `# Any JSON value.
root   ::= value
` + jsonRules

// jsonRules are the rules JSON and the grammars of FromJSONSchema share.
const jsonRules = `value  ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array  ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" char* "\"" ws
char   ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )? ws
integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ws
boolean ::= ( "true" | "false" ) ws
null   ::= "null" ws
ws     ::= | " " | "\n" [ \t]{0,20}
`
