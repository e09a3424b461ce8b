/**
 * Entry of dist/cli.js (run by bin/xetrieval.js). Ctrl-C (or SIGTERM) cancels
 * the work in flight and lets the command dispose its worker and close its
 * output; a second one exits at once.
 */
import { runCli } from './program';

const controller = new AbortController();
let signals = 0;
const onSignal = () => {
  if (++signals > 1) process.exit(130);
  controller.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

runCli(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }, controller.signal).then((code) => {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // exitCode rather than exit(): pending writes to stdout and files still drain.
  process.exitCode = code;
});
