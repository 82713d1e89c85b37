// @vitest-environment jsdom
import { describe, expect, it, vi } from 'vitest';
import { emptyLive, type AnswerState, type StreamEvent } from './applyEvent';
import { StreamController, type ControllerDeps } from './streamController';
import type { SSERequest } from './sse';
import type { Message } from './types';

const encoder = new TextEncoder();

function sse(id: string, data: StreamEvent): string {
  return `id: ${id}\nevent: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An event stream that sends each chunk when pulled (a promise: once it resolves), then
 * ends (or drops). */
function stream(chunks: Array<string | Promise<string>>, drop = false): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i < chunks.length) controller.enqueue(encoder.encode(await chunks[i++]));
      else if (drop) controller.error(new TypeError('network connection lost'));
      else controller.close();
    },
  });
  return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
}

const START: StreamEvent = {
  type: 'start', chat_id: 'c1', message_id: 'g', user_message_id: 'u1', generation_id: 'g', parent_id: 'u1', model: 'm',
};
const DONE: StreamEvent = { type: 'done', message_id: 'g', status: 'complete', finish_reason: 'stop', usage: null };

/** The store side of a controller: the state, every write, and frames run by hand. */
function harness(responses: Array<() => Response>, sendMessage?: ControllerDeps['sendMessage']) {
  const answer: Message = {
    id: 'local-answer-1', chat_id: 'c1', parent_id: 'u1', role: 'assistant', content: '', reasoning: null,
    status: 'streaming', model: null, usage: null, sources: null, error: null, created_at: '2026-01-01T00:00:00Z',
  };
  let state: AnswerState = { chatId: 'c1', messages: [answer], live: emptyLive('local-answer-1') };
  const writes: StreamEvent[][] = [];
  const frames = new Map<number, () => void>();
  const requests: Array<{ url: string; lastEventId?: string }> = [];
  const connections: string[] = [];
  let fellBack = false;
  let nextFrame = 0;
  const deps: ControllerDeps = {
    fetch: (async (input: RequestInfo | URL, init: RequestInit = {}) => {
      requests.push({ url: String(input), lastEventId: (init.headers as Record<string, string>)['Last-Event-ID'] });
      const next = responses.shift();
      if (!next) throw new TypeError('Failed to fetch');
      return next();
    }) as typeof fetch,
    sendMessage: sendMessage ?? (async () => { throw new Error('no fallback expected'); }),
    requestFrame: (callback) => {
      frames.set(++nextFrame, callback);
      return nextFrame;
    },
    cancelFrame: (handle) => frames.delete(handle),
  };
  const controller = new StreamController(
    {
      read: () => state,
      write: (next, _prev, events) => {
        state = next;
        writes.push(events);
      },
      connection: (s) => connections.push(s),
      fallingBack: () => (fellBack = true),
    },
    deps,
  );
  const runFrames = () => {
    const pending = [...frames.values()];
    frames.clear();
    for (const run of pending) run();
  };
  return { controller, writes, frames, requests, connections, runFrames, get state() { return state; }, get fellBack() { return fellBack; } };
}

const FIRST: SSERequest = { url: '/chat/stream', method: 'POST', body: { message: 'hi' } };
const resume = () => ({ url: '/api/chats/c1/events', method: 'GET' as const });

describe('StreamController', () => {
  it('applies the deltas of a frame as one write, before any other event', async () => {
    let release!: (text: string) => void;
    const h = harness([
      () => stream([
        sse('g:1', START),
        sse('g:2', { type: 'delta', delta: 'Hel' }) + sse('g:3', { type: 'delta', delta: 'lo' }),
        // Sent after the frame ran.
        new Promise<string>((resolve) => (release = resolve)),
        sse('g:6', DONE),
      ]),
    ]);
    const running = h.controller.run(FIRST, { resume });
    await vi.waitFor(() => expect(h.frames.size).toBe(1));
    // Both deltas are waiting for the frame: nothing of them written yet.
    expect(h.writes).toEqual([[START]]);
    h.runFrames();
    expect(h.state.live.content).toBe('Hello');
    release(sse('g:4', { type: 'delta', delta: '!' }) + sse('g:5', { type: 'reasoning', delta: '?' }));
    const outcome = await running;
    expect(outcome).toEqual({ kind: 'done', messageId: 'g' });
    // `done` applies the deltas still waiting, then itself, in one write.
    expect(h.writes).toEqual([
      [START],
      [{ type: 'delta', delta: 'Hello' }],
      [{ type: 'delta', delta: '!' }, { type: 'reasoning', delta: '?' }, DONE],
    ]);
    expect(h.frames.size).toBe(0);
    expect(h.state.messages[0]).toMatchObject({ id: 'g', content: 'Hello!', reasoning: '?', status: 'complete' });
  });

  it('resumes a dropped stream with Last-Event-ID and applies a replayed event once', async () => {
    const h = harness([
      () => stream([sse('g:1', START), sse('g:2', { type: 'delta', delta: 'Hel' })], true),
      () => stream([sse('g:2', { type: 'delta', delta: 'Hel' }), sse('g:3', { type: 'delta', delta: 'lo' }), sse('g:4', DONE)]),
    ]);
    const outcome = await h.controller.run(FIRST, { resume });
    expect(outcome.kind).toBe('done');
    expect(h.requests).toEqual([{ url: '/chat/stream', lastEventId: undefined }, { url: '/api/chats/c1/events', lastEventId: 'g:2' }]);
    expect(h.connections).toEqual(['open', 'reconnecting', 'open']);
    expect(h.state.messages[0].content).toBe('Hello');
  });

  it('does not resume a stream that ended after an error event', async () => {
    const h = harness([() => stream([sse('g:1', START), sse('g:2', { type: 'error', code: 'x', message: 'failed', retryable: false })])]);
    const outcome = await h.controller.run(FIRST, { resume });
    expect(outcome).toEqual({ kind: 'ended', error: null });
    expect(h.requests).toHaveLength(1);
    expect(h.state.live.error).toEqual({ code: 'x', message: 'failed', retryable: false });
  });

  it('sends the message without streaming when the stream cannot start (a proxy)', async () => {
    const stored = { id: 'g', chat_id: 'c1' } as Message;
    const sent: unknown[] = [];
    const h = harness([() => new Response('<html>', { headers: { 'Content-Type': 'text/html' } })], async (body) => {
      sent.push(body);
      return stored;
    });
    const outcome = await h.controller.run(FIRST, { resume, fallbackBody: { message: 'hi' } });
    expect(outcome).toEqual({ kind: 'answered', answer: stored });
    expect(h.fellBack).toBe(true);
    expect(sent).toEqual([{ message: 'hi' }]);
  });

  it('reports an unreachable server without falling back', async () => {
    const h = harness([]);
    const outcome = await h.controller.run(FIRST, { resume, fallbackBody: { message: 'hi' } });
    expect(outcome).toMatchObject({ kind: 'failed', unreachable: true, error: { code: 'network', retryable: true } });
    expect(h.fellBack).toBe(false);
  });

  it('a refusal fails the answer with the server\'s error', async () => {
    const refused = () => new Response(JSON.stringify({ error: { code: 'rate_limited', message: 'Slow down' } }), {
      status: 429, headers: { 'Content-Type': 'application/json' },
    });
    const h = harness([refused]);
    const outcome = await h.controller.run(FIRST, { resume, fallbackBody: { message: 'hi' } });
    expect(outcome).toEqual({ kind: 'failed', unreachable: false, error: { code: 'rate_limited', message: 'Slow down', retryable: true } });
  });

  it('after stop, nothing more is written and pending deltas are dropped', async () => {
    const h = harness([() => stream([sse('g:1', START), sse('g:2', { type: 'delta', delta: 'Hel' }), sse('g:3', { type: 'delta', delta: 'lo' })], true)]);
    const running = h.controller.run(FIRST, { resume });
    await vi.waitFor(() => expect(h.frames.size).toBe(1));
    h.controller.stop();
    expect(h.frames.size).toBe(0);
    expect(await running).toEqual({ kind: 'aborted' });
    expect(h.controller.running).toBe(false);
    expect(h.writes).toEqual([[START]]);
  });
});
