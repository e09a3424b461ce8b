import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { ModelError } from '../../src/core/errors';
import { pullModel } from '../../src/engine/models/pull';
import type { ProgressEvent } from '../../src/protocol/worker';
import { fakeModelFiles, listFiles, serveBytes, sha256, startServer, tempDir, type LoopbackServer } from './helpers/modelFixtures';

describe('models: Hugging Face source (loopback hub)', () => {
  let server: LoopbackServer;
  let cacheDir: string;
  const files = fakeModelFiles();
  const savedEndpoint = process.env.HF_ENDPOINT;

  function host(repo: string, revision: string, served: Record<string, Buffer>) {
    for (const [rel, data] of Object.entries(served)) server.routes.set(`/${repo}/resolve/${revision}/${rel}`, serveBytes(data));
  }

  beforeEach(async () => {
    server = await startServer();
    cacheDir = await tempDir();
  });
  afterEach(async () => {
    await server.close();
    await fsp.rm(cacheDir, { recursive: true, force: true });
    if (savedEndpoint === undefined) delete process.env.HF_ENDPOINT;
    else process.env.HF_ENDPOINT = savedEndpoint;
  });

  it('fetches required and present optional files; a 404 on an optional file is fine', async () => {
    host('BAAI/bge-small-en-v1.5', 'main', files);
    const events: ProgressEvent[] = [];
    const got = await pullModel({ model: 'BAAI/bge-small-en-v1.5', cacheDir, hfEndpoint: server.url, onProgress: (p) => events.push(p) });

    assert.strictEqual(got.model, 'bge-small-en-v1.5');
    assert.strictEqual(got.source, 'hf:BAAI/bge-small-en-v1.5@main');
    assert.deepStrictEqual(Object.keys(got.files).sort(), Object.keys(files).sort());
    for (const [rel, data] of Object.entries(files)) assert.strictEqual(got.files[rel].sha256, sha256(data));
    assert.ok(server.hits.includes('/BAAI/bge-small-en-v1.5/resolve/main/tokenizer_config.json'), 'asked for an optional file');
    assert.ok(events.some((e) => e.phase === 'download' && e.message === 'model.safetensors' && e.done === files['model.safetensors'].length));
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'tmp')), []);
  });

  it('uses the revision and HF_ENDPOINT from the environment', async () => {
    host('org/model', 'v2', files);
    process.env.HF_ENDPOINT = server.url;
    const got = await pullModel({ model: 'org/model', source: 'hf:org/model@v2', cacheDir });
    assert.strictEqual(got.dir, path.join(cacheDir, 'models', 'org--model'));
    assert.ok(server.hits.every((h) => h.startsWith('/org/model/resolve/v2/')));
  });

  it('fails naming the file when a required file is missing', async () => {
    const { 'tokenizer.json': _omit, ...rest } = files;
    host('org/model', 'main', rest);
    await assert.rejects(
      pullModel({ model: 'org/model', source: 'hf:org/model', cacheDir, hfEndpoint: server.url }),
      (e: unknown) => e instanceof ModelError && e.code === 'E_MISSING_FILE' && e.message.includes('tokenizer.json') && e.message.includes('404'),
    );
    assert.deepStrictEqual(await listFiles(cacheDir), []);
  });

  it('names the URL and status on a server error', async () => {
    host('org/model', 'main', files);
    server.routes.set('/org/model/resolve/main/model.safetensors', (_req, res) => {
      res.writeHead(500);
      res.end();
    });
    await assert.rejects(
      pullModel({ model: 'org/model', source: 'hf:org/model', cacheDir, hfEndpoint: server.url }),
      (e: unknown) => e instanceof ModelError && e.code === 'E_HTTP' && e.message.includes(`${server.url}/org/model/resolve/main/model.safetensors`) && e.message.includes('500'),
    );
  });

  it('names the URL when the endpoint cannot be reached', async () => {
    const url = server.url;
    await server.close();
    await assert.rejects(
      pullModel({ model: 'org/model', source: 'hf:org/model', cacheDir, hfEndpoint: url }),
      (e: unknown) => e instanceof ModelError && e.code === 'E_NETWORK' && e.message.includes(`${url}/org/model/resolve/main/config.json`),
    );
    server = await startServer(); // for afterEach
  });
});
