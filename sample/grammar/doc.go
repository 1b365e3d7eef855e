// Package grammar constrains text to a grammar, as llama.cpp's GBNF
// grammars do: Parse compiles a grammar's text, and a Matcher follows
// input through it byte by byte, saying at each point which bytes may come
// next and whether the input so far is complete. JSON is a grammar for any
// JSON value, and FromJSONSchema writes one for the values of a JSON
// Schema. A Trie of a vocabulary's token pieces lets a Matcher find every
// token allowed next in one walk (Matcher.AllowedTokens), which is what
// package sample's Grammar processor does at each step of generation.
//
// Matching works on bytes, and character classes are sets of characters
// matched as UTF-8, so a token may end in the middle of a character and
// the next one complete it; only valid UTF-8 is ever accepted.
package grammar
