/** The CLI in-process (no child, no model unless a command loads one): exit code and what it wrote. */
import { PassThrough } from 'stream';
import { runCli } from '../../../src/cli/program';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cliInProcess(argv: string[], stdinText?: string | Buffer): Promise<CliResult> {
  const stdin = new PassThrough();
  if (stdinText !== undefined) stdin.end(stdinText);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runCli(argv, { stdin, stdout, stderr });
  // let the streams deliver what was written last
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out, stderr: err };
}
