#!/usr/bin/env node
// selftest.mjs — checks golden.mjs end to end on a tiny random model:
//   1. tokenize/check-vocab: llama.cpp's own tokenizer test cases for every
//      ../../../shared/testdata/vocab/*.gguf that has .inp/.out files;
//   2. eval: per-position probabilities from llama.cpp against a plain float64
//      JavaScript Llama forward pass of the same GGUF (so position i really is
//      the distribution after tokens[0..i], and it is the unmodified softmax);
//   3. greedy: the continuation agrees with eval's argmax when teacher-forced;
//   4. greedy stops at an end-of-generation token and does not emit it.
//
//   node selftest.mjs [--vocab-dir DIR] [--keep DIR] [--model F32.gguf]
//
// Prints one line per check and "N passed, N failed" at the end; exit status 1 on any failure.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const argOf = (name, def) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : def;
};
const vocabDir = path.resolve(argOf("--vocab-dir", path.join(here, "..", "..", "..", "shared", "testdata", "vocab")));
const work = argOf("--keep", null) ?? fs.mkdtempSync(path.join(os.tmpdir(), "golden-selftest-"));
fs.mkdirSync(work, { recursive: true });

let passed = 0, failed = 0;
function check(name, ok, detail = "") {
    if (ok)
        passed++;
    else
        failed++;
    console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ": " + detail : ""}`);
}

function golden(cmdArgs, input) {
    const out = execFileSync(process.execPath, [path.join(here, "golden.mjs"), ...cmdArgs], {
        input,
        maxBuffer: 1 << 30,
        stdio: ["pipe", "pipe", "inherit"],
    });
    return out.toString("utf8");
}

// ---------------------------------------------------------------- GGUF reader (F32 tensors only)

function readGguf(file) {
    const buf = fs.readFileSync(file);
    let off = 8;
    const nT = Number(buf.readBigUInt64LE(off)); off += 8;
    const nKV = Number(buf.readBigUInt64LE(off)); off += 8;
    const rd = {
        str() {
            const n = Number(buf.readBigUInt64LE(off));
            const s = buf.toString("utf8", off + 8, off + 8 + n);
            off += 8 + n;
            return s;
        },
        val(t) {
            let v;
            switch (t) {
                case 0: v = buf.readUInt8(off); off += 1; return v;
                case 1: v = buf.readInt8(off); off += 1; return v;
                case 2: v = buf.readUInt16LE(off); off += 2; return v;
                case 3: v = buf.readInt16LE(off); off += 2; return v;
                case 4: v = buf.readUInt32LE(off); off += 4; return v;
                case 5: v = buf.readInt32LE(off); off += 4; return v;
                case 6: v = buf.readFloatLE(off); off += 4; return v;
                case 7: v = buf.readUInt8(off) !== 0; off += 1; return v;
                case 8: return rd.str();
                case 9: {
                    const et = buf.readUInt32LE(off);
                    const n = Number(buf.readBigUInt64LE(off + 4));
                    off += 12;
                    const a = new Array(n);
                    for (let i = 0; i < n; i++)
                        a[i] = rd.val(et);
                    return a;
                }
                case 10: v = buf.readBigUInt64LE(off); off += 8; return Number(v);
                case 11: v = buf.readBigInt64LE(off); off += 8; return Number(v);
                case 12: v = buf.readDoubleLE(off); off += 8; return v;
                default: throw new Error(`GGUF type ${t}`);
            }
        },
    };
    const kv = {};
    for (let i = 0; i < nKV; i++) {
        const k = rd.str();
        const t = buf.readUInt32LE(off); off += 4;
        kv[k] = rd.val(t);
    }
    const infos = [];
    for (let i = 0; i < nT; i++) {
        const name = rd.str();
        const nd = buf.readUInt32LE(off); off += 4;
        const dims = [];
        for (let j = 0; j < nd; j++) { dims.push(Number(buf.readBigUInt64LE(off))); off += 8; }
        const type = buf.readUInt32LE(off); off += 4;
        const o = Number(buf.readBigUInt64LE(off)); off += 8;
        infos.push({ name, dims, type, o });
    }
    const align = kv["general.alignment"] ?? 32;
    const dataStart = Math.ceil(off / align) * align;
    const t = {};
    for (const { name, dims, type, o } of infos) {
        if (type !== 0)
            throw new Error(`${name}: only F32 tensors are supported by this reference`);
        const n = dims.reduce((a, b) => a * b, 1);
        const f = new Float32Array(n);
        for (let i = 0; i < n; i++)
            f[i] = buf.readFloatLE(dataStart + o + 4 * i);
        t[name] = { dims, f };
    }
    return { kv, t };
}

// ---------------------------------------------------------------- float64 Llama forward

function reference(model, tokens) {
    const { kv, t } = model;
    const E = kv["llama.embedding_length"], L = kv["llama.block_count"];
    const H = kv["llama.attention.head_count"], HKV = kv["llama.attention.head_count_kv"];
    const eps = kv["llama.attention.layer_norm_rms_epsilon"], base = kv["llama.rope.freq_base"] ?? 10000;
    const D = E / H;
    const V = t["token_embd.weight"].dims[1];
    const out = t["output.weight"] ?? t["token_embd.weight"];
    // matvec with a ggml [in, out] matrix: y[j] = sum_i W[j*in + i] x[i]
    const mv = (W, x) => {
        const [nin, nout] = W.dims;
        const y = new Float64Array(nout);
        for (let j = 0; j < nout; j++) {
            let s = 0;
            const r = j * nin;
            for (let i = 0; i < nin; i++)
                s += W.f[r + i] * x[i];
            y[j] = s;
        }
        return y;
    };
    const rms = (x, w) => {
        let ss = 0;
        for (const v of x) ss += v * v;
        const k = 1 / Math.sqrt(ss / x.length + eps);
        return x.map((v, i) => v * k * w.f[i]);
    };
    const freqs = t["rope_freqs.weight"];
    const rope = (x, nh, pos) => {
        for (let h = 0; h < nh; h++)
            for (let i = 0; i < D / 2; i++) {
                // rope_freqs.weight (Llama 3.1 RoPE scaling) divides each frequency, as in ggml_rope_ext
                const th = (pos * Math.pow(base, (-2 * i) / D)) / (freqs ? freqs.f[i] : 1);
                const c = Math.cos(th), s = Math.sin(th);
                const a = x[h * D + 2 * i], b = x[h * D + 2 * i + 1];
                x[h * D + 2 * i] = a * c - b * s;
                x[h * D + 2 * i + 1] = a * s + b * c;
            }
    };
    const K = Array.from({ length: L }, () => []), Vc = Array.from({ length: L }, () => []);
    const probs = [];
    tokens.forEach((tok, pos) => {
        let x = Float64Array.from(t["token_embd.weight"].f.subarray(tok * E, (tok + 1) * E));
        for (let l = 0; l < L; l++) {
            const p = `blk.${l}.`;
            const h = rms(x, t[p + "attn_norm.weight"]);
            const q = mv(t[p + "attn_q.weight"], h), k = mv(t[p + "attn_k.weight"], h), v = mv(t[p + "attn_v.weight"], h);
            rope(q, H, pos);
            rope(k, HKV, pos);
            K[l].push(k);
            Vc[l].push(v);
            const att = new Float64Array(E);
            for (let hh = 0; hh < H; hh++) {
                const g = Math.floor(hh / (H / HKV));
                const sc = K[l].map((kk) => {
                    let s = 0;
                    for (let i = 0; i < D; i++) s += q[hh * D + i] * kk[g * D + i];
                    return s / Math.sqrt(D);
                });
                const m = Math.max(...sc);
                const e = sc.map((s) => Math.exp(s - m));
                const z = e.reduce((a, b) => a + b, 0);
                e.forEach((w, j) => {
                    for (let i = 0; i < D; i++) att[hh * D + i] += (w / z) * Vc[l][j][g * D + i];
                });
            }
            const o = mv(t[p + "attn_output.weight"], att);
            x = x.map((v2, i) => v2 + o[i]);
            const h2 = rms(x, t[p + "ffn_norm.weight"]);
            const gt = mv(t[p + "ffn_gate.weight"], h2), up = mv(t[p + "ffn_up.weight"], h2);
            const act = gt.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
            const d = mv(t[p + "ffn_down.weight"], act);
            x = x.map((v2, i) => v2 + d[i]);
        }
        const logits = mv(out, rms(x, t["output_norm.weight"]));
        const m = Math.max(...logits);
        const e = logits.map((z) => Math.exp(z - m));
        const s = e.reduce((a, b) => a + b, 0);
        probs.push(e.map((z) => z / s));
        if (logits.length !== V) throw new Error("vocab size mismatch");
    });
    return probs;
}

// ---------------------------------------------------------------- checks

// 1. tokenizer cases
const vocabs = fs.existsSync(vocabDir)
    ? fs.readdirSync(vocabDir).filter((f) => f.endsWith(".gguf") && fs.existsSync(path.join(vocabDir, f + ".inp")))
    : [];
if (vocabs.length === 0)
    console.log(`skip tokenizer cases: no *.gguf with .inp/.out in ${vocabDir}`);
for (const f of vocabs) {
    let res;
    try {
        res = JSON.parse(golden(["check-vocab", "--model", path.join(vocabDir, f)], ""));
    } catch (e) {
        res = JSON.parse(e.stdout?.toString() || '{"total":0,"matched":-1}');
    }
    check(`check-vocab ${f}`, res.matched === res.total && res.total > 0, `${res.matched}/${res.total} cases match`);
}

// 2. eval against the float64 reference, on a tiny model with the SPM vocab
const spm = path.join(vocabDir, "ggml-vocab-llama-spm.gguf");
if (!fs.existsSync(spm)) {
    console.log(`skip eval/greedy: ${spm} not found`);
} else {
    // --model M.gguf checks an all-F32 model of your own (e.g. `ocelot gen --type f32 --output-type f32`) instead
    const own = argOf("--model", null);
    const tiny = own ?? path.join(work, "tiny-spm.gguf");
    if (own == null)
        execFileSync(process.execPath, [path.join(here, "mktiny.mjs"), "--vocab", spm, "-o", tiny, "--seed", "7"], { stdio: "inherit" });
    const model = readGguf(tiny);
    const nv = model.t["token_embd.weight"].dims[1];
    const prompts = [[1, 15043, 3186, 29892, 920, 526, 366, 29973], [1, 450, 4996, 17354, 1701, 29916], [2]].map((p) => p.map((t) => t % nv));
    const input = JSON.stringify({ prompts: prompts.map((tokens) => ({ tokens })) });
    const refs = prompts.map((p) => reference(model, p));

    for (const cfg of [["--kv-type", "f32", "--flash-attn", "off"], ["--kv-type", "f16", "--flash-attn", "auto"], ["--kv-type", "f32", "--flash-attn", "off", "--batch", "3", "--threads", "1"]]) {
        const res = JSON.parse(golden(["eval", "--model", tiny, "--top-k", "5", ...cfg], input));
        let maxDiff = 0, top1 = 0, total = 0, shapeOk = res.prompts.length === prompts.length;
        res.prompts.forEach((r, pi) => {
            shapeOk &&= r.top.length === prompts[pi].length;
            r.top.forEach((row, pos) => {
                const ref = refs[pi][pos];
                shapeOk &&= row.length === 5 && row.every((e, j) => j === 0 || e[1] <= row[j - 1][1]);
                for (const [id, p] of row)
                    maxDiff = Math.max(maxDiff, Math.abs(p - ref[id]));
                let best = 0;
                for (let i = 1; i < ref.length; i++) if (ref[i] > ref[best]) best = i;
                total++;
                if (row[0][0] === best) top1++;
            });
        });
        const tol = cfg.includes("f16") ? 2e-3 : 1e-4;
        check(`eval ${cfg.join(" ")}: shape, sorted rows`, shapeOk);
        check(`eval ${cfg.join(" ")}: top-5 probs vs float64 reference`, maxDiff < tol, `max |dp| = ${maxDiff.toExponential(2)} (tol ${tol}), top-1 agrees at ${top1}/${total} positions`);
    }

    // 3. greedy: the continuation is eval's argmax at each step when teacher-forced
    const n = 12;
    const g = JSON.parse(golden(["greedy", "--model", tiny, "-n", String(n), "--kv-type", "f32", "--flash-attn", "off"], input));
    const forced = g.prompts.map((r, i) => ({ tokens: [...prompts[i], ...r.tokens] }));
    const ev = JSON.parse(golden(["eval", "--model", tiny, "--top-k", "1", "--kv-type", "f32", "--flash-attn", "off"], JSON.stringify({ prompts: forced })));
    let agree = true;
    g.prompts.forEach((r, i) => {
        const P = prompts[i].length;
        agree &&= r.stop === "eog" || r.tokens.length === n;
        r.tokens.forEach((tok, j) => {
            agree &&= ev.prompts[i].top[P - 1 + j][0][0] === tok;
        });
    });
    check(`greedy -n ${n}: continuation = eval argmax, teacher-forced`, agree, g.prompts.map((r) => `${r.tokens.length} tokens (${r.stop})`).join(", "));

    // 4. greedy stops at end-of-generation: a tied-embedding model whose EOS
    //    (id 2) embedding is boosted tends to predict EOS.
    const eosModel = path.join(work, "tiny-eos.gguf");
    execFileSync(process.execPath, [path.join(here, "mktiny.mjs"), "--vocab", spm, "-o", eosModel, "--seed", "7", "--tied", "--boost", "2"], { stdio: "inherit" });
    const eosPrompts = [[1, 2], [1, 15043]];
    const ge = JSON.parse(golden(["greedy", "--model", eosModel, "-n", "8"], JSON.stringify({ prompts: eosPrompts.map((tokens) => ({ tokens })) })));
    const ee = JSON.parse(golden(["eval", "--model", eosModel, "--top-k", "1"], JSON.stringify({ prompts: ge.prompts.map((r, i) => ({ tokens: [...eosPrompts[i], ...r.tokens] })) })));
    const eogOk = ge.prompts.every((r, i) => r.stop === "eog" && r.tokens.length < 8 && ee.prompts[i].top.at(-1)[0][0] === 2);
    check("greedy stops at EOG (stop=\"eog\", EOS not emitted)", eogOk, ge.prompts.map((r) => `${r.tokens.length} tokens (${r.stop})`).join(", "));
}

if (argOf("--keep", null) == null)
    fs.rmSync(work, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
