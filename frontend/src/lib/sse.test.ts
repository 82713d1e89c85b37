import { describe, expect, it } from 'vitest';
import { HttpError, NotAStreamError, readSSE, resumableStream, SSEParser, type SSEEvent } from './sse';

const encoder = new TextEncoder();

/** A Response whose body delivers exactly these byte chunks, then ends or fails. */
function streamResponse(chunks: Uint8Array[], opts: { fail?: boolean; contentType?: string } = {}): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) {
        controller.enqueue(chunks[i++]);
      } else if (opts.fail) {
        controller.error(new TypeError('network connection lost'));
      } else {
        controller.close();
      }
    },
  });
  return new Response(body, {
    status: 200,
    headers: { 'Content-Type': opts.contentType ?? 'text/event-stream; charset=utf-8' },
  });
}

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** A fetch that answers each call with the next scripted response and records the call. */
function scriptedFetch(responses: Array<() => Response | Promise<Response>>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: { ...(init?.headers as Record<string, string>) },
      body: init?.body as string | undefined,
    });
    const next = responses.shift();
    if (!next) throw new Error('no more scripted responses');
    return next();
  }) as typeof fetch;
  return { fetch: fake, calls };
}

function sse(id: string, type: string, data: object): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

describe('SSEParser', () => {
  it('parses fields, multi-line data, comments and ids', () => {
    const parser = new SSEParser();
    const events = parser.feed(': ping\n\nid: g:1\nevent: delta\ndata: a\ndata: b\n\ndata: plain\n\n');
    expect(events).toEqual([
      { id: 'g:1', event: 'delta', data: 'a\nb' },
      { id: 'g:1', event: 'message', data: 'plain' },
    ]);
    expect(parser.comments).toBe(1);
  });

  it('buffers partial lines across chunks', () => {
    const parser = new SSEParser();
    const text = sse('g:1', 'delta', { delta: 'hello' }) + sse('g:2', 'delta', { delta: 'world' });
    const seen: SSEEvent[] = [];
    for (const ch of text) seen.push(...parser.feed(ch)); // one character at a time
    expect(seen.map((e) => JSON.parse(e.data).delta)).toEqual(['hello', 'world']);
    expect(seen.map((e) => e.id)).toEqual(['g:1', 'g:2']);
  });

  it('accepts CRLF and CR line endings, even with CRLF split across chunks', () => {
    const parser = new SSEParser();
    const events = [
      ...parser.feed('data: one\r'),
      ...parser.feed('\n\r'),
      ...parser.feed('\ndata: two\r\rdata: three\n\n'),
    ];
    expect(events.map((e) => e.data)).toEqual(['one', 'two', 'three']);
  });

  it('does not dispatch an event without data, and reads retry', () => {
    const parser = new SSEParser();
    expect(parser.feed('id: x\nretry: 3000\n\n')).toEqual([]);
    expect(parser.retry).toBe(3000);
    expect(parser.feed('data: y\n\n')).toEqual([{ id: 'x', event: 'message', data: 'y' }]);
  });

  it('drops a byte-order mark and keeps an incomplete event pending', () => {
    const parser = new SSEParser();
    expect(parser.feed('\ufeffdata: a\n')).toEqual([]);
    expect(parser.feed('\n')).toEqual([{ id: null, event: 'message', data: 'a' }]);
  });
});

describe('readSSE', () => {
  it('decodes multi-byte characters split across chunks', async () => {
    const bytes = encoder.encode(sse('g:1', 'delta', { delta: 'héllo 🌍 日本' }));
    const emoji = bytes.indexOf(0xf0); // first byte of the 4-byte emoji
    const chunks = [bytes.slice(0, emoji + 1), bytes.slice(emoji + 1, emoji + 3), bytes.slice(emoji + 3)];
    const { fetch } = scriptedFetch([() => streamResponse(chunks)]);
    const deltas: string[] = [];
    await readSSE({ url: '/x' }, { fetch, onEvent: (e) => void deltas.push(JSON.parse(e.data).delta) });
    expect(deltas).toEqual(['héllo 🌍 日本']);
  });

  it('splits every byte into its own chunk without losing a character', async () => {
    const text = sse('g:1', 'delta', { delta: 'Ω≈ç√∫ 😀' }) + sse('g:2', 'done', {});
    const bytes = encoder.encode(text);
    const chunks = Array.from(bytes, (b) => new Uint8Array([b]));
    const { fetch } = scriptedFetch([() => streamResponse(chunks)]);
    const events: SSEEvent[] = [];
    const result = await readSSE({ url: '/x' }, { fetch, onEvent: (e) => void events.push(e) });
    expect(JSON.parse(events[0].data).delta).toBe('Ω≈ç√∫ 😀');
    expect(result.lastEventId).toBe('g:2');
  });

  it('sends Last-Event-ID and the JSON body', async () => {
    const { fetch, calls } = scriptedFetch([() => streamResponse([])]);
    await readSSE({ url: '/s', method: 'POST', body: { a: 1 } }, { fetch, lastEventId: 'g:7', onEvent: () => {} });
    expect(calls[0].method).toBe('POST');
    expect(calls[0].headers['Last-Event-ID']).toBe('g:7');
    expect(calls[0].headers['Content-Type']).toBe('application/json');
    expect(JSON.parse(calls[0].body ?? '')).toEqual({ a: 1 });
  });

  it('reports an HTTP error with the API error code', async () => {
    const { fetch } = scriptedFetch([
      () => new Response(JSON.stringify({ error: { code: 'token_expired', message: 'expired' } }), {
        status: 401,
        headers: { 'Content-Type': 'application/json' },
      }),
    ]);
    const error = await readSSE({ url: '/x' }, { fetch, onEvent: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(401);
    expect((error as HttpError).code).toBe('token_expired');
  });

  it('refuses a response that is not an event stream', async () => {
    const { fetch } = scriptedFetch([() => new Response('<html>', { headers: { 'Content-Type': 'text/html' } })]);
    await expect(readSSE({ url: '/x' }, { fetch, onEvent: () => {} })).rejects.toBeInstanceOf(NotAStreamError);
  });
});

describe('resumableStream', () => {
  const noSleep = async () => {};

  it('reconnects after a drop with Last-Event-ID and misses nothing', async () => {
    const first = sse('g:1', 'start', {}) + sse('g:2', 'delta', { delta: 'Hel' });
    const second = sse('g:3', 'delta', { delta: 'lo' }) + sse('g:4', 'done', {});
    const { fetch, calls } = scriptedFetch([
      () => streamResponse([encoder.encode(first)], { fail: true }),
      () => streamResponse([encoder.encode(second)]),
    ]);
    let text = '';
    const states: string[] = [];
    const outcome = await resumableStream({
      first: { url: '/chat/stream', method: 'POST', body: { message: 'hi' } },
      resume: () => ({ url: '/api/chats/c1/events' }),
      onEvent: (e) => {
        const data = JSON.parse(e.data);
        if (data.type === 'delta') text += data.delta;
        return data.type === 'done';
      },
      onState: (s) => void states.push(s),
      fetch,
      sleep: noSleep,
    });
    expect(outcome).toBe('finished');
    expect(text).toBe('Hello');
    expect(calls.map((c) => [c.method, c.url, c.headers['Last-Event-ID']])).toEqual([
      ['POST', '/chat/stream', undefined],
      ['GET', '/api/chats/c1/events', 'g:2'],
    ]);
    expect(states).toContain('reconnecting');
  });

  it('backs off exponentially between failed attempts and resets after progress', async () => {
    const delays: number[] = [];
    const { fetch, calls } = scriptedFetch([
      () => streamResponse([encoder.encode(sse('g:1', 'start', {}))], { fail: true }),
      () => Promise.reject(new TypeError('offline')),
      () => Promise.reject(new TypeError('offline')),
      () => new Response('busy', { status: 503 }),
      () => streamResponse([encoder.encode(sse('g:2', 'delta', { delta: 'x' }))], { fail: true }),
      () => streamResponse([encoder.encode(sse('g:3', 'done', {}))]),
    ]);
    const outcome = await resumableStream({
      first: { url: '/s', method: 'POST' },
      resume: () => ({ url: '/e' }),
      onEvent: (e) => JSON.parse(e.data).type === 'done',
      fetch,
      sleep: async (ms) => void delays.push(ms),
      random: () => 1, // no jitter: delay = base * 2^(attempt-1)
      baseDelay: 100,
      maxDelay: 250,
    });
    expect(outcome).toBe('finished');
    expect(delays).toEqual([100, 200, 250, 250, 100]);
    expect(calls.slice(1).every((c) => c.url === '/e')).toBe(true);
    expect(calls[5].headers['Last-Event-ID']).toBe('g:2');
  });

  it('gives up after maxAttempts consecutive failures', async () => {
    const { fetch, calls } = scriptedFetch([
      () => streamResponse([encoder.encode(sse('g:1', 'start', {}))], { fail: true }),
      () => Promise.reject(new TypeError('offline')),
      () => Promise.reject(new TypeError('offline')),
    ]);
    await expect(
      resumableStream({
        first: { url: '/s', method: 'POST' },
        resume: () => ({ url: '/e' }),
        onEvent: () => false,
        fetch,
        sleep: noSleep,
        maxAttempts: 3,
      }),
    ).rejects.toThrow('offline');
    expect(calls).toHaveLength(3);
  });

  it('rejects at once when the first request fails before any event (caller falls back)', async () => {
    const { fetch, calls } = scriptedFetch([() => Promise.reject(new TypeError('blocked'))]);
    await expect(
      resumableStream({
        first: { url: '/s', method: 'POST' },
        resume: () => ({ url: '/e' }),
        onEvent: () => false,
        fetch,
        sleep: noSleep,
      }),
    ).rejects.toThrow('blocked');
    expect(calls).toHaveLength(1);
  });

  it('does not retry a client error', async () => {
    const { fetch, calls } = scriptedFetch([
      () => streamResponse([encoder.encode(sse('g:1', 'start', {}))], { fail: true }),
      () => new Response('{"error":{"code":"not_found","message":"gone"}}', { status: 404 }),
    ]);
    await expect(
      resumableStream({
        first: { url: '/s', method: 'POST' },
        resume: () => ({ url: '/e' }),
        onEvent: () => false,
        fetch,
        sleep: noSleep,
      }),
    ).rejects.toBeInstanceOf(HttpError);
    expect(calls).toHaveLength(2);
  });

  it('stops when a resumed GET has nothing more to send', async () => {
    const { fetch, calls } = scriptedFetch([
      () => streamResponse([encoder.encode(sse('g:1', 'start', {}))]),
      () => streamResponse([]),
    ]);
    const outcome = await resumableStream({
      first: { url: '/s', method: 'POST' },
      resume: () => ({ url: '/e' }),
      onEvent: () => false,
      fetch,
      sleep: noSleep,
    });
    expect(outcome).toBe('ended');
    expect(calls).toHaveLength(2);
  });

  it('ends quietly when aborted', async () => {
    const controller = new AbortController();
    const { fetch } = scriptedFetch([
      () => streamResponse([encoder.encode(sse('g:1', 'start', {}))], { fail: true }),
    ]);
    const outcome = await resumableStream({
      first: { url: '/s', method: 'POST' },
      resume: () => ({ url: '/e' }),
      onEvent: () => {
        controller.abort();
        return false;
      },
      fetch,
      signal: controller.signal,
      sleep: noSleep,
    });
    expect(outcome).toBe('aborted');
  });
});
