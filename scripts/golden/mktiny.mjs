#!/usr/bin/env node
// mktiny.mjs — write a tiny Llama-architecture GGUF with seeded random F32
// weights, borrowing the tokenizer of a vocab-only GGUF (for example
// ../shared/testdata/vocab/ggml-vocab-llama-spm.gguf). It exists so that the
// eval and greedy subcommands of golden.mjs, and selftest.mjs, can run before
// `ocelot gen` exists; it is not a substitute for it.
//
//   node mktiny.mjs --vocab V.gguf -o tiny.gguf [--embd 64] [--layers 2] [--heads 4]
//                   [--kv-heads 2] [--ff 128] [--ctx 256] [--seed 1] [--eps 1e-5]
//                   [--rope-base 10000] [--tied] [--boost ID]
//
// Tensors use ggml's dimension order (ne0 first): token_embd [embd, vocab],
// attn_q [embd, embd], attn_k/attn_v [embd, kv_heads*head_dim], attn_output
// [embd, embd], ffn_gate/ffn_up [embd, ff], ffn_down [ff, embd], output
// [embd, vocab] (absent with --tied), norms [embd].

import fs from "node:fs";
import process from "node:process";

const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 };
const scalarSize = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function die(msg) {
    process.stderr.write(`mktiny: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const f = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i].replace(/^--?/, "");
        if (a === "tied") {
            f.tied = true;
            continue;
        }
        if (i + 1 >= argv.length)
            die(`flag ${argv[i]} needs a value`);
        f[a] = argv[++i];
    }
    return f;
}

// readKVs returns the metadata key/value pairs of a GGUF file as
// {key, type, raw} where raw holds the encoded value bytes (type tag excluded).
function readKVs(buf) {
    if (buf.toString("latin1", 0, 4) !== "GGUF")
        die("vocab file is not GGUF");
    const version = buf.readUInt32LE(4);
    if (version !== 3)
        die(`vocab file is GGUF v${version}, want v3`);
    const nKV = Number(buf.readBigUInt64LE(16));
    let off = 24;
    const readStr = () => {
        const n = Number(buf.readBigUInt64LE(off));
        const s = buf.toString("utf8", off + 8, off + 8 + n);
        off += 8 + n;
        return s;
    };
    const skipValue = (type) => {
        if (type === T.STRING) {
            off += 8 + Number(buf.readBigUInt64LE(off));
        } else if (type === T.ARRAY) {
            const et = buf.readUInt32LE(off);
            const n = Number(buf.readBigUInt64LE(off + 4));
            off += 12;
            if (et === T.STRING || et === T.ARRAY) {
                for (let i = 0; i < n; i++)
                    skipValue(et);
            } else {
                off += n * scalarSize[et];
            }
        } else if (type in scalarSize) {
            off += scalarSize[type];
        } else {
            die(`unknown GGUF value type ${type} at byte ${off}`);
        }
    };
    const kvs = [];
    for (let i = 0; i < nKV; i++) {
        const key = readStr();
        const type = buf.readUInt32LE(off);
        off += 4;
        const start = off;
        skipValue(type);
        kvs.push({ key, type, raw: buf.subarray(start, off) });
    }
    return kvs;
}

function str(s) {
    const b = Buffer.from(s, "utf8");
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(b.length));
    return Buffer.concat([n, b]);
}
function u32(v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
}
function u64(v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
}
function f32(v) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    return b;
}

// mulberry32 + Box-Muller: a small seeded normal generator, so a seed gives the same file everywhere.
function rng(seed) {
    let a = seed >>> 0;
    const uni = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return () => {
        const u = Math.max(uni(), 1e-12);
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uni());
    };
}

const flags = parseArgs(process.argv.slice(2));
if (flags.vocab == null || flags.o == null)
    die("usage: node mktiny.mjs --vocab V.gguf -o out.gguf [--embd 64] [--layers 2] [--heads 4] [--kv-heads 2] [--ff 128] [--ctx 256] [--seed 1] [--tied]");
const num = (k, d) => (flags[k] == null ? d : Number(flags[k]));
const embd = num("embd", 64), layers = num("layers", 2), heads = num("heads", 4);
const kvHeads = num("kv-heads", 2), ff = num("ff", 128), ctx = num("ctx", 256);
const seed = num("seed", 1), eps = num("eps", 1e-5), ropeBase = num("rope-base", 10000);
if (embd % heads !== 0 || heads % kvHeads !== 0)
    die("--embd must be a multiple of --heads and --heads a multiple of --kv-heads");
const headDim = embd / heads;

const vocabKVs = readKVs(fs.readFileSync(flags.vocab)).filter(
    (kv) => kv.key.startsWith("tokenizer.") && kv.key !== "tokenizer.chat_template",
);
const tokensKV = vocabKVs.find((kv) => kv.key === "tokenizer.ggml.tokens");
if (tokensKV == null)
    die("vocab file has no tokenizer.ggml.tokens");
const nVocab = Number(tokensKV.raw.readBigUInt64LE(4));

const kvs = [
    ["general.architecture", T.STRING, str("llama")],
    ["general.name", T.STRING, str(`tiny-random-seed${seed}`)],
    ["general.file_type", T.U32, u32(0)], // ALL_F32
    ["general.alignment", T.U32, u32(32)],
    ["llama.context_length", T.U32, u32(ctx)],
    ["llama.embedding_length", T.U32, u32(embd)],
    ["llama.block_count", T.U32, u32(layers)],
    ["llama.feed_forward_length", T.U32, u32(ff)],
    ["llama.attention.head_count", T.U32, u32(heads)],
    ["llama.attention.head_count_kv", T.U32, u32(kvHeads)],
    ["llama.attention.layer_norm_rms_epsilon", T.F32, f32(eps)],
    ["llama.rope.dimension_count", T.U32, u32(headDim)],
    ["llama.rope.freq_base", T.F32, f32(ropeBase)],
    ["llama.vocab_size", T.U32, u32(nVocab)],
    ...vocabKVs.map((kv) => [kv.key, kv.type, kv.raw]),
];

// tensors: [name, dims (ne0 first), std of the normal fill, mean]
const tensors = [["token_embd.weight", [embd, nVocab], 1.0, 0]];
for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
        [p + "attn_norm.weight", [embd], 0.1, 1],
        [p + "attn_q.weight", [embd, embd], 1 / Math.sqrt(embd), 0],
        [p + "attn_k.weight", [embd, kvHeads * headDim], 1 / Math.sqrt(embd), 0],
        [p + "attn_v.weight", [embd, kvHeads * headDim], 1 / Math.sqrt(embd), 0],
        [p + "attn_output.weight", [embd, embd], 1 / Math.sqrt(embd), 0],
        [p + "ffn_norm.weight", [embd], 0.1, 1],
        [p + "ffn_gate.weight", [embd, ff], 1 / Math.sqrt(embd), 0],
        [p + "ffn_up.weight", [embd, ff], 1 / Math.sqrt(embd), 0],
        [p + "ffn_down.weight", [ff, embd], 1 / Math.sqrt(ff), 0],
    );
}
tensors.push(["output_norm.weight", [embd], 0.1, 1]);
if (!flags.tied)
    tensors.push(["output.weight", [embd, nVocab], 3 / Math.sqrt(embd), 0]);

const ALIGN = 32;
const pad = (n) => (ALIGN - (n % ALIGN)) % ALIGN;
const head = [Buffer.from("GGUF", "latin1"), u32(3), u64(tensors.length), u64(kvs.length)];
for (const [k, t, raw] of kvs)
    head.push(str(k), u32(t), raw);
let dataOff = 0;
const offsets = [];
for (const [name, dims] of tensors) {
    offsets.push(dataOff);
    head.push(str(name), u32(dims.length), ...dims.map(u64), u32(0 /* F32 */), u64(dataOff));
    const bytes = dims.reduce((a, b) => a * b, 1) * 4;
    dataOff += bytes + pad(bytes);
}
let header = Buffer.concat(head);
header = Buffer.concat([header, Buffer.alloc(pad(header.length))]);

const fd = fs.openSync(flags.o, "w");
fs.writeSync(fd, header);
const normal = rng(seed);
const boost = flags.boost == null ? null : Number(flags.boost);
if (boost != null && !(Number.isInteger(boost) && boost >= 0 && boost < nVocab))
    die(`--boost must be a token id in [0, ${nVocab})`);
for (const [name, dims, std, mean] of tensors) {
    const n = dims.reduce((a, b) => a * b, 1);
    const arr = new Float32Array(n);
    for (let i = 0; i < n; i++)
        arr[i] = mean + std * normal();
    if (name === "token_embd.weight" && boost != null) {
        // --boost ID: scale one token's embedding so that, with --tied, the
        // model tends to repeat that token (used to test stopping at EOG).
        for (let i = boost * dims[0]; i < (boost + 1) * dims[0]; i++)
            arr[i] *= 8;
    }
    const b = Buffer.from(arr.buffer);
    fs.writeSync(fd, b);
    fs.writeSync(fd, Buffer.alloc(pad(b.length)));
}
fs.closeSync(fd);
process.stderr.write(`mktiny: wrote ${flags.o}: vocab ${nVocab}, embd ${embd}, layers ${layers}, heads ${heads}/${kvHeads}, ff ${ff}, ${tensors.length} tensors\n`);
