import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LlmRequestError, VIEW_INSTRUCTIONS, buildPrompt, generateViews } from '../../src/train/llmViews';
import { FakeLlm } from './helpers/fakeLlm';

const readLines = (f: string) =>
  fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as { doc_id: string; view: string; text: string; source: string });

describe('views generate (OpenAI-compatible endpoint)', function () {
  this.timeout(30_000);
  let llm: FakeLlm;
  let dir: string;
  let corpus: string;
  const docs = [
    { _id: 'd1', title: 'Ice', text: 'Water expands as it freezes.' },
    { _id: 'd2', title: '', text: 'Mitochondria make ATP.' },
    { _id: 3, title: 'Tides', text: 'The moon pulls the oceans.' },
  ];
  const docText = (d: (typeof docs)[number]) => `${d.title} ${d.text}`.trim();

  beforeEach(async () => {
    llm = new FakeLlm();
    await llm.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xet-views-'));
    corpus = path.join(dir, 'corpus.jsonl');
    fs.writeFileSync(corpus, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  });
  afterEach(async () => {
    await llm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends the paper’s three prompts with the model and key, and writes one line per answer', async () => {
    const out = path.join(dir, 'views.jsonl');
    const r = await generateViews({ input: corpus, output: out, endpoint: llm.url + '/', model: 'tiny-llm', env: { OPENAI_API_KEY: 'sk-test' }, concurrency: 3 });
    assert.deepStrictEqual(r, { documents: 3, written: 9, skipped: 0 });
    assert.strictEqual(llm.seen.length, 9);
    for (const s of llm.seen) {
      assert.strictEqual(s.auth, 'Bearer sk-test');
      assert.strictEqual(s.model, 'tiny-llm');
      assert.match(s.prompt, /^In layman's terms, /);
    }
    assert.ok(VIEW_INSTRUCTIONS.qa.includes('at most 20 distinct question-answer pairs'));
    assert.ok(VIEW_INSTRUCTIONS.summary.includes('summarize this text in one paragraph'));
    assert.ok(VIEW_INSTRUCTIONS.purpose.includes('describe the purpose of this text in one paragraph'));
    const lines = readLines(out);
    assert.strictEqual(lines.length, 9);
    for (const d of docs) {
      for (const view of ['qa', 'summary', 'purpose'] as const) {
        const l = lines.filter((x) => x.doc_id === String(d._id) && x.view === view);
        assert.strictEqual(l.length, 1, `${d._id}/${view}`);
        // each answer lands on its own (doc, view) line even with requests in parallel
        assert.strictEqual(l[0].text, `ANSWER:${buildPrompt(view, docText(d))}`);
        assert.strictEqual(l[0].source, 'llm:tiny-llm');
      }
    }
    assert.ok(!llm.seen.some((s) => s.prompt.includes('Mitochondria') && s.prompt.includes('\n ')), 'an empty title adds no leading space');
  });

  it('keeps at most `concurrency` requests in flight and streams lines as answers arrive', async () => {
    const out = path.join(dir, 'views.jsonl');
    const linesWhenAsked: number[] = [];
    llm.handler = async (s, res) => {
      linesWhenAsked.push(fs.existsSync(out) ? readLines(out).length : 0);
      await new Promise((r) => setTimeout(r, 30));
      FakeLlm.answer(res, 'ok ' + s.prompt.length);
    };
    await generateViews({ input: corpus, output: out, endpoint: llm.url, model: 'm', env: {}, concurrency: 2 });
    assert.strictEqual(llm.maxInFlight, 2);
    assert.strictEqual(llm.seen[0].auth, undefined, 'no key, no Authorization header');
    assert.ok(linesWhenAsked[linesWhenAsked.length - 1] >= 6, `lines on disk before the last request: ${linesWhenAsked}`);
  });

  it('retries a 429 (honouring Retry-After) and a 503, then succeeds', async () => {
    const out = path.join(dir, 'views.jsonl');
    const failures = new Map<string, number>();
    llm.handler = (s, res) => {
      const key = s.prompt;
      const n = failures.get(key) ?? 0;
      if (s.prompt.includes('Mitochondria') && n < 2) {
        failures.set(key, n + 1);
        if (n === 0) res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end('{"error":{"message":"rate limited"}}');
        else res.writeHead(503).end('overloaded');
        return;
      }
      FakeLlm.answer(res, 'fine');
    };
    const r = await generateViews({ input: corpus, output: out, endpoint: llm.url, model: 'm', env: {}, views: ['summary'], retryBaseMs: 5 });
    assert.strictEqual(r.written, 3);
    assert.strictEqual(llm.seen.length, 3 + 2);
    assert.deepStrictEqual(readLines(out).map((l) => l.doc_id).sort(), ['3', 'd1', 'd2']);
  });

  it('retries a request that gets no answer within the timeout', async () => {
    const out = path.join(dir, 'views.jsonl');
    let calls = 0;
    llm.handler = async (_s, res) => {
      if (calls++ === 0) await new Promise((r) => setTimeout(r, 300)); // first request hangs past the timeout
      if (!res.destroyed) FakeLlm.answer(res, 'eventually');
    };
    const r = await generateViews({ input: corpus, output: out, endpoint: llm.url, model: 'm', env: {}, views: ['purpose'], concurrency: 1, timeoutMs: 100, retryBaseMs: 1 });
    assert.strictEqual(r.written, 3);
    assert.strictEqual(llm.seen.length, 4);
    assert.deepStrictEqual(readLines(out).map((l) => l.text), ['eventually', 'eventually', 'eventually']);
  });

  it('fails on a 400 naming the document, view, HTTP status and the server’s message; gives up on 5xx after the retries', async () => {
    const out = path.join(dir, 'views.jsonl');
    llm.handler = (s, res) => {
      if (s.prompt.includes('Tides')) res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"context length exceeded"}}');
      else FakeLlm.answer(res, 'fine');
    };
    await assert.rejects(generateViews({ input: corpus, output: out, endpoint: llm.url, model: 'm', env: {}, views: ['qa'], concurrency: 1 }), (e: LlmRequestError) => {
      assert.strictEqual(e.code, 'E_LLM_HTTP');
      assert.strictEqual(e.status, 400);
      assert.strictEqual(e.docId, '3');
      assert.ok(e.message.includes(`${corpus}:3: document "3" (view qa)`), e.message);
      assert.ok(e.message.includes('HTTP 400 Bad Request: context length exceeded'), e.message);
      return true;
    });
    assert.strictEqual(llm.seen.length, 3, 'a 400 is not retried');
    assert.deepStrictEqual(readLines(out).map((l) => l.doc_id), ['d1', 'd2'], 'answers before the failure stay on disk');

    llm.handler = (_s, res) => {
      res.writeHead(502).end('bad gateway');
    };
    llm.seen.length = 0;
    await assert.rejects(
      generateViews({ input: corpus, output: path.join(dir, 'other.jsonl'), endpoint: llm.url, model: 'm', env: {}, views: ['qa'], concurrency: 1, maxRetries: 2, retryBaseMs: 1 }),
      /document "d1" \(view qa\): .* still answered HTTP 502 Bad Gateway: bad gateway after 3 attempts/,
    );
    assert.strictEqual(llm.seen.length, 3);
  });

  it('resumes: skips pairs already in the output and repairs a line cut short by a crash', async () => {
    const out = path.join(dir, 'views.jsonl');
    const prior = [
      { doc_id: 'd1', view: 'qa', text: 'old qa', source: 'llm:m' },
      { doc_id: 'd1', view: 'summary', text: 'old summary', source: 'llm:m' },
      { doc_id: '3', view: 'purpose', text: 'old purpose', source: 'llm:m' },
    ];
    fs.writeFileSync(out, prior.map((l) => JSON.stringify(l)).join('\n') + '\n{"doc_id":"d2","view":"qa","te');
    const r = await generateViews({ input: corpus, output: out, endpoint: llm.url, model: 'm', env: {} });
    assert.deepStrictEqual(r, { documents: 3, written: 6, skipped: 3 });
    assert.strictEqual(llm.seen.length, 6);
    assert.ok(!llm.seen.some((s) => s.prompt === buildPrompt('qa', 'Ice Water expands as it freezes.')));
    const lines = readLines(out); // every line parses: the cut line is gone
    assert.strictEqual(lines.length, 9);
    assert.deepStrictEqual(lines.slice(0, 3), prior);
    assert.strictEqual(new Set(lines.map((l) => `${l.doc_id}/${l.view}`)).size, 9);

    const again = await generateViews({ input: corpus, output: out, endpoint: llm.url, model: 'm', env: {} });
    assert.deepStrictEqual(again, { documents: 3, written: 0, skipped: 9 });
    assert.strictEqual(llm.seen.length, 6, 'nothing left to ask');
  });

  it('reads {doc_id, text} lines and names file, line and field for bad input', async () => {
    const plain = path.join(dir, 'docs.jsonl');
    fs.writeFileSync(plain, '{"doc_id": "a", "text": "Alpha text."}\n{"doc_id": "b"}\n');
    const out = path.join(dir, 'v.jsonl');
    await assert.rejects(generateViews({ input: plain, output: out, endpoint: llm.url, model: 'm', env: {}, views: ['summary'], concurrency: 1 }), (e: Error) => {
      assert.strictEqual(e.message, `${plain}:2: field "text": missing`);
      return true;
    });
    assert.deepStrictEqual(readLines(out), [{ doc_id: 'a', view: 'summary', text: `ANSWER:${buildPrompt('summary', 'Alpha text.')}`, source: 'llm:m' }]);

    fs.writeFileSync(plain, '{"id": "a", "text": "x"}\n');
    await assert.rejects(generateViews({ input: plain, output: out, endpoint: llm.url, model: 'm', env: {} }), new RegExp(`${plain}:1: field "doc_id": missing`));
    await assert.rejects(generateViews({ input: corpus, output: out, endpoint: 'not a url', model: 'm', env: {} }), /endpoint "not a url" is not a URL/);
  });

  it('stops when the caller aborts', async () => {
    const ac = new AbortController();
    llm.handler = (_s, res) => {
      ac.abort();
      setTimeout(() => FakeLlm.answer(res, 'late'), 50);
    };
    await assert.rejects(generateViews({ input: corpus, output: path.join(dir, 'v.jsonl'), endpoint: llm.url, model: 'm', env: {}, signal: ac.signal }), { name: 'CancelledError' });
  });
});
