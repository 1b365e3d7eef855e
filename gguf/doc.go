// Package gguf reads and writes GGUF files, the model format of llama.cpp
// and ggml (versions 2 and 3, little-endian).
//
// A file holds a header, ordered metadata (key/value pairs whose values are
// numbers, booleans, strings or arrays of them), a table of tensor infos
// (name, type, shape, offset), and the tensor data, each tensor aligned to
// general.alignment (32 bytes by default).
//
// Open memory-maps a file read-only where the platform allows (Linux,
// Android, macOS, FreeBSD) so that TensorData costs nothing, and reads on
// demand elsewhere; Parse reads a file held in memory. Both check the
// whole structure before returning: a damaged or hostile file gives a
// *FormatError naming the field and its byte offset, never a panic or an
// allocation out of proportion to the file's size.
//
// Writer builds a file, streaming tensor data through fill functions.
package gguf
