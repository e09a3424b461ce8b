import * as http from 'http';
import { AddressInfo } from 'net';

export interface Seen {
  auth?: string;
  model: string;
  prompt: string;
}

type Handler = (req: Seen, res: http.ServerResponse) => void | Promise<void>;

/** A loopback stand-in for an OpenAI-compatible endpoint; by default it answers with "ANSWER:" + the prompt. */
export class FakeLlm {
  readonly seen: Seen[] = [];
  inFlight = 0;
  maxInFlight = 0;
  handler: Handler = (r, res) => FakeLlm.answer(res, `ANSWER:${r.prompt}`);
  private server!: http.Server;
  url = '';

  static answer(res: http.ServerResponse, content: string): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', async () => {
        if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
          res.writeHead(404).end();
          return;
        }
        const j = JSON.parse(body) as { model: string; messages: { role: string; content: string }[] };
        const seen = { auth: req.headers.authorization, model: j.model, prompt: j.messages[j.messages.length - 1].content };
        this.seen.push(seen);
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        try {
          await this.handler(seen, res);
        } finally {
          this.inFlight--;
        }
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
