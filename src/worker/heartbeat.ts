/**
 * The worker's heartbeat: a thread of its own writes a byte to the pipe the
 * caller named (XETRIEVAL_HEARTBEAT_FD) every XETRIEVAL_HEARTBEAT_MS. Being a
 * thread, it keeps beating through long synchronous work on the main thread,
 * and stops only when the whole process does (stopped, frozen, dead): what the
 * caller's watchdog looks for. Imported first, so it beats while the rest loads.
 */
import { Worker } from 'worker_threads';

const fd = Number(process.env.XETRIEVAL_HEARTBEAT_FD);
const ms = Number(process.env.XETRIEVAL_HEARTBEAT_MS) || 500;

const THREAD = `
const { workerData } = require('worker_threads');
const fs = require('fs');
const beat = Buffer.from('.');
const tick = () => {
  try {
    fs.writeSync(workerData.fd, beat);
  } catch (e) {
    // EAGAIN: the caller is slow to read, try again next time; anything else: the caller is gone
    if (e.code !== 'EAGAIN') clearInterval(timer);
  }
};
const timer = setInterval(tick, workerData.ms);
tick();
`;

if (Number.isInteger(fd) && fd > 2) {
  const thread = new Worker(THREAD, { eval: true, workerData: { fd, ms } });
  // the heartbeat never keeps the worker alive on its own
  thread.unref();
}
