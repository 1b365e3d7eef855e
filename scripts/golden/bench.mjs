// bench.mjs — llama.cpp's CPU speed on a GGUF file, measured the way
// `ocelot bench` measures ocelot's, so the two can be put side by side.
//
//   node bench.mjs --model M.gguf [--threads 2] [--pp 512] [--tg 64] [--batch 2048] [--reps 3] [--kv-type f16]
//
// pp: the prompt's tokens evaluated in one call (llama.cpp splits them into
// micro-batches of its default n_ubatch, 512). tg: tokens evaluated one
// call each, as decoding does; no sampling is timed. Token ids are the same
// spread ocelot bench uses: id_i = (i*7919 + 101) mod n_vocab, BOS first.
// One warm-up run precedes the timed ones. Prints one JSON object.
import os from "node:os";
import { getLlama, GgmlType, LlamaLogLevel } from "node-llama-cpp";

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";

function flag(name, def) {
    const i = process.argv.indexOf("--" + name);
    if (i < 0) return def;
    return process.argv[i + 1];
}

const modelPath = flag("model");
if (!modelPath) {
    console.error("usage: node bench.mjs --model M.gguf [--threads T] [--pp N] [--tg N] [--batch B] [--reps R] [--kv-type f16]");
    process.exit(2);
}
const threads = Number(flag("threads", os.availableParallelism()));
const pp = Number(flag("pp", 512));
const tg = Number(flag("tg", 64));
const reps = Number(flag("reps", 3));
const kv = flag("kv-type", "f16");
const kvTypes = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0, q4_0: GgmlType.Q4_0 };

const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
    progressLogs: false, maxThreads: 0, logLevel: LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const bos = model.tokens.bos ?? 1;
const ids = (n) => Array.from({ length: n }, (_, i) => (i === 0 ? bos : (i * 7919 + 101) % nVocab));
const ctxSize = pp + tg + 2;
const context = await model.createContext({
    contextSize: ctxSize,
    batchSize: Number(flag("batch", Math.max(pp, 1))),
    sequences: 1,
    threads: { ideal: threads, min: threads },
    experimentalKvCacheKeyType: kvTypes[kv],
    experimentalKvCacheValueType: kvTypes[kv],
    ignoreMemorySafetyChecks: true,
    batching: { dispatchSchedule: (dispatch) => dispatch() },
});
const seq = context.getSequence();

async function run(test) {
    await seq.clearHistory();
    const t0 = process.hrtime.bigint();
    if (test === "pp") {
        await seq.evaluateWithoutGeneratingNewTokens(ids(pp));
        return [pp, Number(process.hrtime.bigint() - t0) / 1e9];
    }
    // Greedy generation inside node-llama-cpp's own loop: each step is
    // one native decode of one token plus an argmax.
    const t1 = process.hrtime.bigint();
    let n = 0;
    for await (const _ of seq.evaluate([bos], { temperature: 0 })) {
        if (++n >= tg) break;
    }
    return [n, Number(process.hrtime.bigint() - t1) / 1e9];
}

const out = { engine: "llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU)", model: modelPath, threads, kv, rows: [] };
for (const test of ["pp", "tg"]) {
    if ((test === "pp" ? pp : tg) <= 0) continue;
    await run(test); // warm-up
    const tps = [];
    for (let r = 0; r < reps; r++) {
        const [n, s] = await run(test);
        tps.push(n / s);
    }
    const mean = tps.reduce((a, b) => a + b, 0) / tps.length;
    const std = Math.sqrt(tps.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, tps.length - 1));
    out.rows.push({ test: test + (test === "pp" ? pp : tg), tps_mean: mean, tps_std: std });
}
console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
