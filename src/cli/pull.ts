/**
 * `xetrieval models pull`: fetches (or re-verifies) a model into the cache
 * through the worker and prints where it lies and what its files hash to.
 */
import { CliContext } from './context';
import { formatBytes } from './progress';
import { withSession } from './session';

export interface PullOptions {
  model: string;
  source?: string;
  force: boolean;
}

export async function runPull(ctx: CliContext, opts: PullOptions): Promise<number> {
  const pulled = await withSession(ctx, (session) =>
    session.call('pullModel', { model: opts.model, source: opts.source, cacheDir: ctx.globals.cacheDir, force: opts.force }, (p) =>
      // Every pull phase (download, extract, copy, verify) counts bytes.
      ctx.progress.update(p.phase, p.done, p.total, { format: formatBytes, detail: p.message }),
    ),
  );
  ctx.progress.end();
  const how = pulled.fetched ? `fetched from ${pulled.source}` : `already in the cache (verified; from ${pulled.source})`;
  const files = Object.entries(pulled.files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const width = Math.max(...files.map(([, f]) => formatBytes(f.size).length));
  ctx.io.stdout.write(
    `${pulled.model}: ${how}\n${pulled.dir}\n` + files.map(([name, f]) => `  sha256:${f.sha256}  ${formatBytes(f.size).padStart(width)}  ${name}\n`).join(''),
  );
  return 0;
}
