/**
 * A single-line document of `mb` MB scored end to end by the CLI (read the
 * line, parse, send to the worker, tokenise, encode): wall time, and the
 * worker's peak RSS (VmHWM, read every 20 ms while it runs). Target: under
 * 5 s and under 500 MB for 50 MB.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface LongLineResult {
  mb: number;
  seconds: number;
  workerPeakRssMb: number;
  exitCode: number | null;
  docTruncated: boolean;
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

function hwmMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export async function benchLongLine(mb: number): Promise<LongLineResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-bench-long-'));
  try {
    const words = 'the quick brown fox jumps over a lazy dog while protein kinase signalling regulates cell growth'.split(' ');
    const parts: string[] = [];
    let n = 0;
    for (let i = 0; n < mb * 1e6; i++) {
      parts.push(words[i % words.length]);
      n += words[i % words.length].length + 1;
    }
    const input = path.join(dir, 'long.jsonl');
    fs.writeFileSync(input, JSON.stringify({ query_id: 'q1', doc_id: 'd1', query: 'protein kinase signalling', doc: parts.join(' ') }) + '\n');
    parts.length = 0;
    const output = path.join(dir, 'scores.jsonl');
    const bin = path.join(__dirname, '..', 'bin', 'xetrieval.js');
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, '--device', 'cpu', '-q', 'score', '-i', input, '-o', output], { stdio: ['ignore', 'ignore', 'inherit'] });
    const peaks = new Map<number, number>();
    const poll = setInterval(() => {
      for (const pid of childPids(child.pid!)) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, hwmMb(pid)));
    }, 20);
    const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    clearInterval(poll);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const out = fs.existsSync(output) ? fs.readFileSync(output, 'utf8').trim() : '';
    return {
      mb,
      seconds,
      workerPeakRssMb: Math.max(0, ...peaks.values()),
      exitCode,
      docTruncated: out !== '' && (JSON.parse(out) as { doc_truncated?: boolean }).doc_truncated === true,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
