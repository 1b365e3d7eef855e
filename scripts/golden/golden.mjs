#!/usr/bin/env node
// golden.mjs — drive llama.cpp's real CPU implementation (the prebuilt
// binaries that ship inside node-llama-cpp's npm packages) to produce golden
// outputs that ocelot can be compared against.
//
// Every subcommand reads JSON on stdin and writes JSON on stdout; llama.cpp's
// own log lines go to stderr. See README.md beside this file.
//
//   node golden.mjs tokenize --model M.gguf [--special]          JSONL strings in, JSONL id arrays out
//   node golden.mjs check-vocab --model M.gguf [--inp F --out F] run llama.cpp's test-tokenizer-0 case files
//   node golden.mjs eval   --model M.gguf [--top-k 10] [--threads T] [--ctx N] [--batch B] ...
//   node golden.mjs greedy --model M.gguf [-n 32] [--threads T] [--ctx N] [--batch B] ...
//   node golden.mjs info
//
// Nothing here downloads or builds llama.cpp: getLlama() is called with
// build:"never", usePrebuiltBinaries:true, skipDownload:true and gpu:false, so
// the CPU binaries of @node-llama-cpp/<platform> are used or the run fails.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

// Belt and braces: the package's own code must never try to fetch a release.
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD ??= "true";

const { getLlama, LlamaLogLevel, GgmlType } = await import("node-llama-cpp");

const here = path.dirname(fileURLToPath(import.meta.url));

const USAGE = `usage: node golden.mjs <command> [flags]

commands:
  tokenize     --model M.gguf [--special]
               stdin: one JSON string per line; stdout: one JSON array of token ids per line.
               add_special=false; parse_special=false unless --special.
               Loads the model vocab-only, so vocab-only GGUF files work.
  check-vocab  --model M.gguf [--inp M.gguf.inp] [--out M.gguf.out] [--verbose]
               Tokenize llama.cpp's test-tokenizer-0 cases and compare with the expected ids.
               stdout: {"total","matched","failures":[...]}; exit status 1 if any case differs.
  eval         --model M.gguf [--top-k 10] [common flags]
               stdin: {"prompts":[{"tokens":[ids...]}, ...]}
               stdout: {"meta":{...},"prompts":[{"top":[[[id,prob],...] per position]}, ...]}
               top[i] is the distribution of the token after tokens[0..i], i.e. softmax of the full
               logits at position i (temperature 1, no penalties, no truncation), best first.
  greedy       --model M.gguf [-n 32] [common flags]
               stdin: {"prompts":[{"tokens":[ids...]}, ...]}
               stdout: {"meta":{...},"prompts":[{"tokens":[generated ids...],"stop":"eog"|"length"}, ...]}
  info         print the node-llama-cpp and llama.cpp versions and the binary in use.

common flags (eval, greedy):
  --threads T      CPU threads (default: os.availableParallelism())
  --ctx N          context size; must exceed the positions needed by one (default: longest
                   prompt, plus -n for greedy, plus 1, at least 16)
  --batch B        logical = physical batch (n_batch = n_ubatch) (default: --ctx, so a prompt
                   is decoded in one batch)
  --kv-type T      KV cache type for K and V: f16 (llama.cpp's default), f32, q8_0, q4_0 (default f16)
  --flash-attn X   auto|on|off (default auto, llama.cpp's default; auto turns it on for CPU)
  --log-level L    llama.cpp log level sent to stderr: error|warn|info|debug (default warn)
`;

function die(msg, code = 2) {
    process.stderr.write(`golden: ${msg}\n`);
    process.exit(code);
}

// parseArgs parses "--flag value" and "--flag=value" pairs; flags listed in
// booleans take no value.
function parseArgs(argv, booleans = new Set()) {
    const flags = {};
    for (let i = 0; i < argv.length; i++) {
        let a = argv[i];
        if (!a.startsWith("-"))
            die(`unexpected argument ${JSON.stringify(a)}\n\n${USAGE}`);
        a = a.replace(/^--?/, "");
        let value;
        const eq = a.indexOf("=");
        if (eq >= 0) {
            value = a.slice(eq + 1);
            a = a.slice(0, eq);
        } else if (booleans.has(a)) {
            value = true;
        } else {
            if (i + 1 >= argv.length)
                die(`flag --${a} needs a value`);
            value = argv[++i];
        }
        flags[a] = value;
    }
    return flags;
}

function intFlag(flags, name, def, { min = 0 } = {}) {
    const v = flags[name];
    if (v == null)
        return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
        die(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
}

function requireModel(flags) {
    const m = flags.model;
    if (m == null || m === true)
        die("--model M.gguf is required");
    if (!fs.existsSync(m))
        die(`model file ${m} does not exist`);
    return path.resolve(m);
}

const logLevels = {
    error: LlamaLogLevel.error,
    warn: LlamaLogLevel.warn,
    info: LlamaLogLevel.info,
    debug: LlamaLogLevel.debug,
};

// While a model is loaded vocab-only, node-llama-cpp still tries to simulate a
// full load to estimate memory; that fails for a file without tensors and logs
// warnings that mean nothing here. vocabOnlyNoise drops exactly those lines.
let vocabOnlyLoad = false;
const vocabOnlyNoise = /^(Failed simulating model resource usage|llama_model_load: error loading model: missing tensor|llama_model_load_from_file_impl: failed to load model)/;

async function loadLlama(flags) {
    const lvl = flags["log-level"] ?? "warn";
    if (!(lvl in logLevels))
        die(`--log-level must be one of ${Object.keys(logLevels).join("|")}, got ${JSON.stringify(lvl)}`);
    return await getLlama({
        gpu: false,                 // CPU implementation only
        build: "never",             // never compile llama.cpp
        usePrebuiltBinaries: true,  // use @node-llama-cpp/<platform>
        skipDownload: true,         // never fetch llama.cpp sources/releases
        progressLogs: false,
        maxThreads: 0,              // no cap: --threads is taken as given
        logLevel: logLevels[lvl],
        logger: (level, message) => {
            if (vocabOnlyLoad && vocabOnlyNoise.test(message))
                return;
            process.stderr.write(message.endsWith("\n") ? message : message + "\n");
        },
    });
}

// nlcDir is node_modules/node-llama-cpp (its package.json is not exported).
const nlcDir = path.resolve(path.dirname(fileURLToPath(import.meta.resolve("node-llama-cpp"))), "..");

function versions() {
    const pkg = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8"));
    let llamaCpp = null;
    try {
        llamaCpp = JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "binariesGithubRelease.json"), "utf8")).release;
    } catch {
        // unknown
    }
    return { nodeLlamaCpp: pkg.version, llamaCppRelease: llamaCpp };
}

async function readStdin() {
    const chunks = [];
    for await (const c of process.stdin)
        chunks.push(c);
    return Buffer.concat(chunks).toString("utf8");
}

function writeJSON(obj) {
    return new Promise((resolve) => {
        if (process.stdout.write(JSON.stringify(obj) + "\n"))
            resolve();
        else
            process.stdout.once("drain", resolve);
    });
}

// ---------------------------------------------------------------- tokenize

async function loadVocab(llama, modelPath) {
    vocabOnlyLoad = true;
    try {
        return await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
    } finally {
        vocabOnlyLoad = false;
    }
}

async function cmdTokenize(argv) {
    const flags = parseArgs(argv, new Set(["special"]));
    const modelPath = requireModel(flags);
    const llama = await loadLlama(flags);
    const model = await loadVocab(llama, modelPath);
    const special = flags.special === true;

    const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
        lineNo++;
        if (line.trim() === "")
            continue;
        let text;
        try {
            text = JSON.parse(line);
        } catch (e) {
            die(`stdin line ${lineNo}: not JSON: ${e.message}`);
        }
        if (typeof text !== "string")
            die(`stdin line ${lineNo}: expected a JSON string, got ${typeof text}`);
        // LlamaModel.tokenize(text, false) -> common_tokenize(vocab, text, add_special=false, parse_special=false)
        const ids = Array.from(model.tokenize(text, special));
        await writeJSON(ids);
    }
    await model.dispose();
    await llama.dispose();
}

// ------------------------------------------------------------- check-vocab

// splitCases mirrors read_tests() in llama.cpp's tests/test-tokenizer-0.cpp.
function splitCases(raw) {
    const sep = "\n__ggml_vocab_test__\n";
    const out = [];
    let pos = 0;
    while (pos < raw.length) {
        const next = raw.indexOf(sep, pos);
        if (next < 0) {
            out.push(raw.slice(pos));
            break;
        }
        out.push(raw.slice(pos, next));
        pos = next + sep.length;
    }
    return out;
}

async function cmdCheckVocab(argv) {
    const flags = parseArgs(argv, new Set(["verbose"]));
    const modelPath = requireModel(flags);
    const inp = flags.inp ?? modelPath + ".inp";
    const outF = flags.out ?? modelPath + ".out";
    const texts = splitCases(fs.readFileSync(inp, "utf8"));
    const expected = fs.readFileSync(outF, "utf8").split("\n");
    if (expected.length > 0 && expected[expected.length - 1] === "")
        expected.pop();
    if (texts.length !== expected.length)
        die(`${inp} has ${texts.length} cases but ${outF} has ${expected.length} lines`);

    const llama = await loadLlama(flags);
    const model = await loadVocab(llama, modelPath);
    const failures = [];
    for (let i = 0; i < texts.length; i++) {
        const want = expected[i].trim() === "" ? [] : expected[i].trim().split(/ +/).map(Number);
        const got = Array.from(model.tokenize(texts[i], false));
        const ok = got.length === want.length && got.every((t, j) => t === want[j]);
        if (!ok)
            failures.push({ case: i, text: texts[i], want, got });
        if (flags.verbose)
            process.stderr.write(`${ok ? "ok  " : "FAIL"} ${i} ${JSON.stringify(texts[i]).slice(0, 60)}\n`);
    }
    await model.dispose();
    await llama.dispose();
    await writeJSON({
        model: path.basename(modelPath),
        total: texts.length,
        matched: texts.length - failures.length,
        failures,
    });
    if (failures.length > 0)
        process.exitCode = 1;
}

// ------------------------------------------------------- eval and greedy

function readPrompts(raw, vocabSize) {
    let req;
    try {
        req = JSON.parse(raw);
    } catch (e) {
        die(`stdin: not JSON: ${e.message}`);
    }
    if (req == null || !Array.isArray(req.prompts))
        die(`stdin: expected {"prompts":[{"tokens":[ids...]}, ...]}`);
    return req.prompts.map((p, i) => {
        if (p == null || !Array.isArray(p.tokens) || p.tokens.length === 0)
            die(`stdin: prompts[${i}].tokens must be a non-empty array of token ids`);
        p.tokens.forEach((t, j) => {
            if (!Number.isInteger(t) || t < 0 || t >= vocabSize)
                die(`stdin: prompts[${i}].tokens[${j}] = ${JSON.stringify(t)} is not a token id in [0, ${vocabSize})`);
        });
        return p.tokens;
    });
}

const kvTypes = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0, q4_0: GgmlType.Q4_0 };

function contextOptions(flags, needed) {
    const threads = intFlag(flags, "threads", os.availableParallelism(), { min: 1 });
    // node-llama-cpp keeps one cell of a sequence free (it decodes at most
    // contextSize-1 tokens before shifting), so `needed` positions need needed+1.
    const ctx = intFlag(flags, "ctx", Math.max(16, needed + 1), { min: 2 });
    if (ctx < needed + 1)
        die(`--ctx ${ctx} is too small: ${needed} positions need --ctx ${needed + 1} or more`);
    const batch = intFlag(flags, "batch", ctx, { min: 1 });
    const kv = flags["kv-type"] ?? "f16";
    if (!(kv in kvTypes))
        die(`--kv-type must be one of ${Object.keys(kvTypes).join("|")}, got ${JSON.stringify(kv)}`);
    const fa = flags["flash-attn"] ?? "auto";
    const faMap = { auto: "auto", on: true, off: false };
    if (!(fa in faMap))
        die(`--flash-attn must be auto|on|off, got ${JSON.stringify(fa)}`);
    return {
        meta: { threads, ctx, batch, kvType: kv, flashAttn: fa },
        options: {
            contextSize: ctx,
            batchSize: batch,
            sequences: 1,
            // ideal == min: always use exactly T threads
            threads: { ideal: threads, min: threads },
            flashAttention: faMap[fa],
            experimentalKvCacheKeyType: kvTypes[kv],
            experimentalKvCacheValueType: kvTypes[kv],
            // no context shift: an overflowing prompt is an error, not a silently shifted window
            ignoreMemorySafetyChecks: true,
        },
    };
}

// modelVocabSize is the number of rows of the logits: the length of
// tokenizer.ggml.tokens in the GGUF metadata.
function modelVocabSize(model) {
    const n = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length;
    if (!Number.isInteger(n) || n <= 0)
        throw new Error("cannot read the vocabulary size (tokenizer.ggml.tokens) from the GGUF metadata");
    return n;
}

async function openModel(flags) {
    const modelPath = requireModel(flags);
    const llama = await loadLlama(flags);
    const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    return { llama, model, modelPath };
}

// noShift makes an overflowing context an error instead of a silent shift.
const noShift = {
    size: 0,
    strategy: () => {
        throw new Error("context overflow: raise --ctx");
    },
};

async function cmdEval(argv) {
    const flags = parseArgs(argv);
    const topK = intFlag(flags, "top-k", 10, { min: 1 });
    const raw = await readStdin();
    const { llama, model, modelPath } = await openModel(flags);
    const vocabSize = modelVocabSize(model);
    const prompts = readPrompts(raw, vocabSize);
    const needed = Math.max(...prompts.map((p) => p.length));
    const { meta, options } = contextOptions(flags, needed);
    const context = await model.createContext(options);
    if (context.idealThreads !== meta.threads)
        throw new Error(`asked for ${meta.threads} threads, node-llama-cpp set ${context.idealThreads}`);
    const sequence = context.getSequence({ contextShift: noShift });

    const results = [];
    for (const tokens of prompts) {
        await sequence.clearHistory();
        // Ask for the full next-token distribution after every position. With
        // no sampling options node-llama-cpp resolves temperature=0, which
        // selects llama.cpp's greedy sampler alone (top-k/top-p/min-p are not
        // in the chain when temperature is 0), so `probabilities` is
        // softmax(logits) over the whole vocabulary, unmodified.
        const input = tokens.map((t) => [t, { generateNext: { probabilities: true } }]);
        const out = await sequence.controlledEvaluate(input);
        const top = [];
        for (let i = 0; i < tokens.length; i++) {
            const probs = out[i]?.next?.probabilities;
            if (probs == null)
                throw new Error(`no probabilities for position ${i}`);
            const row = [];
            // the Map is sorted by probability, highest first
            for (const [id, p] of probs) {
                if (row.length >= topK)
                    break;
                row.push([id, p]);
            }
            top.push(row);
        }
        results.push({ top });
    }
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    await writeJSON({
        meta: { ...versions(), model: path.basename(modelPath), command: "eval", topK, ...meta },
        prompts: results,
    });
}

async function cmdGreedy(argv) {
    const flags = parseArgs(argv);
    const n = intFlag(flags, "n", 32, { min: 0 });
    const raw = await readStdin();
    const { llama, model, modelPath } = await openModel(flags);
    const vocabSize = modelVocabSize(model);
    const prompts = readPrompts(raw, vocabSize);
    const needed = Math.max(...prompts.map((p) => p.length)) + n;
    const { meta, options } = contextOptions(flags, needed);
    const context = await model.createContext(options);
    if (context.idealThreads !== meta.threads)
        throw new Error(`asked for ${meta.threads} threads, node-llama-cpp set ${context.idealThreads}`);
    const sequence = context.getSequence({ contextShift: noShift });

    const results = [];
    for (const tokens of prompts) {
        await sequence.clearHistory();
        const generated = [];
        let stop = "length";
        if (n > 0) {
            // temperature 0 -> llama_sampler_init_greedy() alone: argmax of the raw logits
            // (ties go to the lowest id). No repeat penalty, no token bias, no grammar.
            const last = tokens.length - 1;
            let input = tokens.map((t, i) => (i === last ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
            for (;;) {
                const out = await sequence.controlledEvaluate(input);
                const next = out[input.length - 1]?.next?.token;
                if (next == null)
                    throw new Error("llama.cpp returned no token");
                if (model.isEogToken(next)) {
                    stop = "eog";
                    break;
                }
                generated.push(next);
                if (generated.length >= n)
                    break;
                input = [[next, { generateNext: { token: true, options: { temperature: 0 } } }]];
            }
        }
        results.push({ tokens: generated, stop });
    }
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    await writeJSON({
        meta: { ...versions(), model: path.basename(modelPath), command: "greedy", n, ...meta },
        prompts: results,
    });
}

// -------------------------------------------------------------------- info

async function cmdInfo(argv) {
    const flags = parseArgs(argv);
    const llama = await loadLlama(flags);
    await writeJSON({
        ...versions(),
        gpu: llama.gpu,
        buildType: llama.buildType,
        cpuMathCores: llama.cpuMathCores,
        maxThreads: llama.maxThreads,
        systemInfo: llama.systemInfo,
        dir: here,
    });
    await llama.dispose();
}

const commands = {
    tokenize: cmdTokenize,
    "check-vocab": cmdCheckVocab,
    eval: cmdEval,
    greedy: cmdGreedy,
    info: cmdInfo,
};

const [cmd, ...rest] = process.argv.slice(2);
if (cmd == null || cmd === "-h" || cmd === "--help" || cmd === "help") {
    process.stdout.write(USAGE);
    process.exit(cmd == null ? 2 : 0);
}
if (!(cmd in commands))
    die(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
try {
    await commands[cmd](rest);
} catch (e) {
    die(`${cmd}: ${e?.stack ?? e}`, 1);
}
