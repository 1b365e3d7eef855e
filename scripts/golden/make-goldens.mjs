#!/usr/bin/env node
// make-goldens.mjs — write one golden file (testdata/golden/<preset>.json)
// for one model from llama.cpp's outputs. make-goldens.sh calls it once per
// model; see the top of that script for the whole procedure.
//
//   node make-goldens.mjs --model M.gguf --preset tiny --sha256 HEX --prompts prompts.json \
//       --out ../../testdata/golden/tiny.json [--top-k 10] [-n 32] [--threads 2] \
//       [--kv-type f16] [--flash-attn auto] [--type q4_0 --output-type q6_K] \
//       [--cpu "model name"] [--generator "command"]
//
// Every number in the output comes from llama.cpp through golden.mjs (run
// as a child process, exactly as a person would run it):
//
//   1. tokens: `golden.mjs tokenize` (add_special=false; --special for
//      prompts marked "special": true), then BOS/EOS added as llama.cpp's
//      common_tokenize(add_special=true) adds them: llama_vocab_get_add_bos /
//      llama_vocab_get_add_eos of the model's vocabulary, read here through
//      node-llama-cpp (LlamaModel.tokens.shouldPrependBosToken, ...);
//   2. top: `golden.mjs eval --top-k K` (teacher-forced, whole prompt in one
//      batch, full-vocabulary softmax at every position);
//   3. greedy: `golden.mjs greedy -n N`.
//
// The file is written compactly but one position per line, so a diff shows
// which prompt and position changed.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD ??= "true";
const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = path.join(here, "golden.mjs");

function die(msg) {
    process.stderr.write(`make-goldens: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const f = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith("-"))
            die(`unexpected argument ${JSON.stringify(a)}`);
        if (i + 1 >= argv.length)
            die(`flag ${a} needs a value`);
        f[a.replace(/^--?/, "")] = argv[++i];
    }
    return f;
}

const flags = parseArgs(process.argv.slice(2));
for (const req of ["model", "preset", "sha256", "prompts", "out"])
    if (flags[req] == null)
        die(`--${req} is required`);
const topK = Number(flags["top-k"] ?? 10);
const nGreedy = Number(flags.n ?? 32);
const threads = String(flags.threads ?? 2);
const kvType = flags["kv-type"] ?? "f16";
const flashAttn = flags["flash-attn"] ?? "auto";
const modelPath = path.resolve(flags.model);

// run executes golden.mjs with the given arguments and stdin, and returns
// its stdout; llama.cpp's log lines pass through to our stderr.
function run(args, input) {
    return execFileSync(process.execPath, [golden, ...args], {
        input,
        encoding: "utf8",
        maxBuffer: 1 << 28,
        stdio: ["pipe", "pipe", "inherit"],
    });
}

// llama.cpp's answer to "what does add_special add for this model".
async function specialTokens() {
    const llama = await getLlama({
        gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
        progressLogs: false, logLevel: LlamaLogLevel.error, logger: () => {},
    });
    const model = await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
    const t = model.tokens;
    const out = { bos: t.bos, eos: t.eos, addBos: t.shouldPrependBosToken, addEos: t.shouldAppendEosToken };
    await model.dispose();
    await llama.dispose();
    return out;
}

const prompts = JSON.parse(fs.readFileSync(flags.prompts, "utf8"));
if (!Array.isArray(prompts) || prompts.length === 0)
    die(`${flags.prompts}: expected a non-empty array of {"name","text"[,"special"]}`);

const special = await specialTokens();

// 1. tokens, in two passes (parse_special off, then on).
const tokens = new Array(prompts.length);
for (const sp of [false, true]) {
    const idx = prompts.map((p, i) => (Boolean(p.special) === sp ? i : -1)).filter((i) => i >= 0);
    if (idx.length === 0)
        continue;
    const input = idx.map((i) => JSON.stringify(prompts[i].text)).join("\n") + "\n";
    const lines = run(["tokenize", "--model", modelPath, ...(sp ? ["--special"] : [])], input).trim().split("\n");
    if (lines.length !== idx.length)
        die(`tokenize returned ${lines.length} lines for ${idx.length} prompts`);
    idx.forEach((i, k) => {
        let ids = JSON.parse(lines[k]);
        if (special.addBos)
            ids = [special.bos, ...ids];
        if (special.addEos)
            ids = [...ids, special.eos];
        tokens[i] = ids;
    });
}

// 2. and 3. llama.cpp's probabilities and greedy continuations.
const common = ["--model", modelPath, "--threads", threads, "--kv-type", kvType, "--flash-attn", flashAttn];
const req = JSON.stringify({ prompts: tokens.map((t) => ({ tokens: t })) });
const ev = JSON.parse(run(["eval", "--top-k", String(topK), ...common], req));
const gr = JSON.parse(run(["greedy", "-n", String(nGreedy), ...common], req));
const info = JSON.parse(run(["info"], ""));

const size = fs.statSync(modelPath).size;
const doc = {
    about: "Golden outputs of llama.cpp's CPU implementation for an ocelot synthetic model. " +
        "Written by scripts/golden/make-goldens.sh; do not edit by hand. Checked by golden_test.go.",
    model: {
        preset: flags.preset,
        type: flags.type ?? "q4_0",
        outputType: flags["output-type"] ?? "q6_K",
        seed: 1,
        vocab: "built-in",
        generator: flags.generator ?? `ocelot gen --preset ${flags.preset} --seed 1`,
        sha256: flags.sha256,
        bytes: size,
    },
    llamaCpp: {
        nodeLlamaCpp: ev.meta.nodeLlamaCpp,
        release: ev.meta.llamaCppRelease,
        systemInfo: info.systemInfo,
        cpu: flags.cpu ?? "",
    },
    settings: {
        topK, greedyN: nGreedy, threads: Number(threads),
        kvType: ev.meta.kvType, flashAttn: ev.meta.flashAttn,
        evalCtx: ev.meta.ctx, evalBatch: ev.meta.batch, greedyCtx: gr.meta.ctx, greedyBatch: gr.meta.batch,
        addBos: special.addBos, addEos: special.addEos, bos: special.bos,
    },
    prompts: prompts.map((p, i) => ({
        name: p.name,
        text: p.text,
        special: Boolean(p.special),
        tokens: tokens[i],
        greedy: gr.prompts[i].tokens,
        stop: gr.prompts[i].stop,
        top: ev.prompts[i].top.map((row) => row.map(([id, pr]) => [id, Number(pr.toPrecision(6))])),
    })),
};

// Compact, one position of `top` per line.
function write(doc) {
    const j = JSON.stringify;
    const lines = ["{"];
    const head = ["about", "model", "llamaCpp", "settings"].map((k) => `  ${j(k)}: ${j(doc[k])},`);
    lines.push(...head, `  "prompts": [`);
    doc.prompts.forEach((p, i) => {
        lines.push("    {");
        for (const k of ["name", "text", "special", "tokens", "greedy", "stop"])
            lines.push(`      ${j(k)}: ${j(p[k])},`);
        lines.push(`      "top": [`);
        p.top.forEach((row, r) => lines.push(`        ${j(row)}${r < p.top.length - 1 ? "," : ""}`));
        lines.push("      ]");
        lines.push(`    }${i < doc.prompts.length - 1 ? "," : ""}`);
    });
    lines.push("  ]", "}");
    return lines.join("\n") + "\n";
}

fs.mkdirSync(path.dirname(flags.out), { recursive: true });
fs.writeFileSync(flags.out, write(doc));
process.stderr.write(`make-goldens: wrote ${flags.out} (${doc.prompts.length} prompts, ` +
    `${tokens.reduce((s, t) => s + t.length, 0)} positions)\n`);
