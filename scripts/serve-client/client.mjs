// The official openai client against a running ocelot serve: every call
// an application makes, checked. Usage: node client.mjs BASE_URL API_KEY
// (cmd/ocelot's TestServeOpenAIClient starts the server and runs this).
// It prints "ok NAME" per check and exits 1 after any failure.
import OpenAI from "openai";

const [, , baseURL, apiKey] = process.argv;
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey, maxRetries: 0 });
const model = "test-model";
let failed = false;
function check(name, cond, detail) {
	if (cond) {
		console.log(`ok ${name}`);
	} else {
		failed = true;
		console.log(`FAIL ${name}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
	}
}
const user = (content) => [{ role: "user", content }];

async function streamChat(messages, extra = {}) {
	const s = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0, stream: true, ...extra });
	let text = "", finish = null, usage = null;
	for await (const ev of s) {
		if (ev.choices.length > 0) {
			text += ev.choices[0].delta?.content ?? "";
			finish = ev.choices[0].finish_reason ?? finish;
		}
		if (ev.usage) usage = ev.usage;
	}
	return { text, finish, usage };
}

// Models.
const models = await client.models.list();
check("models", models.data.length === 1 && models.data[0].id === model, models.data);

// Chat, whole and streamed: the same greedy text.
const chat = await client.chat.completions.create({ model, messages: user("Hello"), max_tokens: 12, temperature: 0 });
const msg = chat.choices[0].message;
check("chat", msg.role === "assistant" && typeof msg.content === "string" && chat.usage.completion_tokens > 0 && chat.choices[0].finish_reason, chat);
const st = await streamChat(user("Hello"), { stream_options: { include_usage: true } });
check("chat stream", st.text === msg.content && st.finish === chat.choices[0].finish_reason && st.usage?.completion_tokens === chat.usage.completion_tokens, { st, want: msg.content });

// Completions, and a stop string taken from the greedy text: the output
// ends before it, with finish_reason "stop".
const cmp = await client.completions.create({ model, prompt: "The ocelot", max_tokens: 16, temperature: 0 });
const text = cmp.choices[0].text;
check("completion", typeof text === "string" && text.length > 0 && cmp.usage.prompt_tokens > 0, cmp);
if (text.length >= 6) {
	const stop = text.slice(4, 6);
	const cut = await client.completions.create({ model, prompt: "The ocelot", max_tokens: 16, temperature: 0, stop: [stop] });
	check("stop string", cut.choices[0].text === text.slice(0, text.indexOf(stop)) && cut.choices[0].finish_reason === "stop", { got: cut.choices[0], stop, text });
}

// Embeddings: one unit vector per input.
// (The client asks for base64 unless told; both formats are checked.)
const emb = await client.embeddings.create({ model, input: ["an ocelot", "a cat of the Americas"] });
const embF = await client.embeddings.create({ model, input: "an ocelot", encoding_format: "float" });
check("embeddings as floats", embF.data[0].embedding.length === emb.data[0].embedding.length && embF.data[0].embedding.every((x, i) => Math.abs(x - emb.data[0].embedding[i]) < 1e-6), "");
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
check("embeddings", emb.data.length === 2 && emb.data.every((d) => Math.abs(norm(d.embedding) - 1) < 1e-3), emb.data.map((d) => norm(d.embedding)));

// JSON Schema: the output parses and has the required fields.
// (maxLength lets even a model of random weights, as this test's, close
// the string within the token limit.)
const schema = { type: "object", properties: { name: { type: "string", maxLength: 24 }, ok: { type: "boolean" } }, required: ["name", "ok"] };
const js = await client.chat.completions.create({
	model, messages: user("Describe an ocelot as JSON."), max_tokens: 300, temperature: 0.7, seed: 7,
	response_format: { type: "json_schema", json_schema: { name: "ocelot", schema } },
});
let parsed = null;
try { parsed = JSON.parse(js.choices[0].message.content); } catch (e) { parsed = e.message; }
check("json schema", parsed && typeof parsed.name === "string" && typeof parsed.ok === "boolean", { content: js.choices[0].message.content, parsed });

// Cancellation: the client aborts mid-stream; the server frees the
// request at once and serves the next.
const ac = new AbortController();
try {
	const s = await client.chat.completions.create({ model, messages: user("Tell me a long story"), max_tokens: 100, stream: true }, { signal: ac.signal });
	for await (const ev of s) { ac.abort(); }
} catch (e) {
	// the abort
}
let running = -1;
for (let i = 0; i < 50 && running !== 0; i++) {
	const m = await (await fetch(baseURL + "/metrics", { headers: { Authorization: "Bearer " + apiKey } })).text();
	running = Number(/^ocelot_requests_running (\d+)/m.exec(m)[1]);
	if (running !== 0) await new Promise((r) => setTimeout(r, 20));
}
check("cancel frees the request", running === 0, `requests_running ${running}`);

// 16 clients streaming at once: each gets what it gets alone.
const prompts = Array.from({ length: 16 }, (_, i) => user(`Client ${i} says hello`));
const alone = [];
for (const p of prompts) {
	const r = await client.chat.completions.create({ model, messages: p, max_tokens: 12, temperature: 0 });
	alone.push(r.choices[0].message.content);
}
const together = await Promise.all(prompts.map((p) => streamChat(p)));
check("16 concurrent streams", together.every((r, i) => r.text === alone[i] && r.finish), together.map((r, i) => [r.text, alone[i]]));

// Bad requests: 4xx with OpenAI's error shape.
async function status(f) {
	try { await f(); return 200; } catch (e) { return e instanceof OpenAI.APIError ? e.status : String(e); }
}
check("empty messages", (await status(() => client.chat.completions.create({ model, messages: [] }))) === 400, "");
check("unknown model", (await status(() => client.chat.completions.create({ model: "nope", messages: user("x") }))) === 404, "");
check("prompt too long", (await status(() => client.completions.create({ model, prompt: "ocelot ".repeat(5000) }))) === 400, "");
check("bad temperature", (await status(() => client.completions.create({ model, prompt: "x", temperature: 9 }))) === 400, "");
const bad = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "wrong", maxRetries: 0 });
check("wrong API key", (await status(() => bad.models.list())) === 401, "");

process.exit(failed ? 1 : 0);
