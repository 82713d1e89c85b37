// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { conversation, parseEventId } from './conversation.svelte';
import type { Message } from './types';

const encoder = new TextEncoder();

function sse(generation: string, seq: number, data: Record<string, unknown>): string {
  return `id: ${generation}:${seq}\nevent: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An event-stream response that sends `text` and then ends, or fails like a dropped connection. */
function stream(text: string, drop = false): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(encoder.encode(text));
      } else if (drop) {
        controller.error(new TypeError('network connection lost'));
      } else {
        controller.close();
      }
    },
  });
  return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function message(id: string, role: 'user' | 'assistant', content: string, parent: string | null, status = 'complete'): Message {
  return {
    id, chat_id: 'c1', parent_id: parent, role, content, reasoning: null, status: status as Message['status'],
    model: 'm', usage: null, sources: null, error: null, created_at: '2026-01-01T00:00:00Z', sibling_ids: [id],
  };
}

const chat = {
  id: 'c1', title: 'T', model: null, system_prompt: null, agent_id: null, pinned: false, archived: false,
  created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
};

type Route = (url: string, init: RequestInit) => Response | undefined;
let routes: Route[] = [];
let calls: Array<{ url: string; method: string; lastEventId?: string }> = [];

beforeEach(() => {
  routes = [];
  calls = [];
  vi.stubGlobal('requestAnimationFrame', (cb: FrameRequestCallback) => setTimeout(() => cb(performance.now()), 0) as unknown as number);
  vi.stubGlobal('cancelAnimationFrame', (id: number) => clearTimeout(id));
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input);
    const headers = (init.headers ?? {}) as Record<string, string>;
    calls.push({ url, method: init.method ?? 'GET', lastEventId: headers['Last-Event-ID'] });
    for (const route of routes) {
      const response = route(url, init);
      if (response) return response;
    }
    if (url.startsWith('/api/chats?')) return json({ items: [chat], next_cursor: null });
    throw new Error(`unexpected fetch ${url}`);
  });
});

afterEach(() => {
  conversation.startNew();
  vi.unstubAllGlobals();
});

describe('parseEventId', () => {
  it('splits at the last colon', () => {
    expect(parseEventId('gen:12')).toEqual(['gen', 12]);
    expect(parseEventId('a:b:3')).toEqual(['a:b', 3]);
    expect(parseEventId('nope')).toBeNull();
    expect(parseEventId(null)).toBeNull();
  });
});

describe('conversation streaming', () => {
  it('resumes a dropped stream with Last-Event-ID and applies replayed events once', async () => {
    const g = 'a1';
    const start = { type: 'start', chat_id: 'c1', message_id: g, user_message_id: 'u1', generation_id: g, parent_id: 'u1', model: 'm' };
    routes.push((url, init) =>
      url === '/chat/stream' && init.method === 'POST'
        ? stream(sse(g, 1, start) + sse(g, 2, { type: 'delta', delta: 'Hel' }), true)
        : undefined,
    );
    // The server replays one event too many: it must not show twice.
    routes.push((url) =>
      url === '/api/chats/c1/events'
        ? stream(
            sse(g, 2, { type: 'delta', delta: 'Hel' }) +
              sse(g, 3, { type: 'delta', delta: 'lo' }) +
              sse(g, 4, { type: 'done', message_id: g, status: 'complete', usage: null }),
          )
        : undefined,
    );
    let streamed: string | undefined;
    routes.push((url) => {
      if (!url.startsWith('/api/chats/c1?')) return undefined;
      // Called once the answer is done: what the stream itself produced, before the store's copy.
      streamed = conversation.messages.find((m) => m.id === g)?.content;
      return json({ ...chat, messages: [message('u1', 'user', 'hi', null), message(g, 'assistant', 'Hello', 'u1')] });
    });
    await conversation.send('hi');
    await vi.waitFor(() => expect(conversation.generating).toBe(false), { timeout: 5000 });
    expect(streamed).toBe('Hello');
    const resumed = calls.find((c) => c.url === '/api/chats/c1/events');
    expect(resumed?.lastEventId).toBe(`${g}:2`);
    expect(conversation.chatId).toBe('c1');
  });

  it('a resync replaces the text shown so far with the server\'s', async () => {
    const g = 'a3';
    const start = { type: 'start', chat_id: 'c1', message_id: g, user_message_id: 'u1', generation_id: g, parent_id: 'u1', model: 'm' };
    routes.push((url, init) =>
      url === '/chat/stream' && init.method === 'POST'
        ? stream(
            sse(g, 1, start) +
              sse(g, 2, { type: 'delta', delta: 'Hel' }) +
              // The server lost events 3-9: it sends the stored text instead, then the ending.
              sse(g, 10, { type: 'resync', message_id: g, content: 'Hello wor', reasoning: null }) +
              sse(g, 11, { type: 'error', code: 'owner_lost', message: 'stopped', retryable: true }) +
              sse(g, 12, { type: 'done', message_id: g, status: 'interrupted', usage: null }),
          )
        : undefined,
    );
    let streamed: string | undefined;
    routes.push((url) => {
      if (!url.startsWith('/api/chats/c1?')) return undefined;
      streamed = conversation.messages.find((m) => m.id === g)?.content;
      return json({ ...chat, messages: [message('u1', 'user', 'hi', null), message(g, 'assistant', 'Hello wor', 'u1', 'interrupted')] });
    });
    await conversation.send('hi');
    await vi.waitFor(() => expect(conversation.generating).toBe(false), { timeout: 5000 });
    expect(streamed).toBe('Hello wor');
  });

  it('following again after the stream ended early replays from the start over the checkpoint', async () => {
    const g = 'a2';
    const start = { type: 'start', chat_id: 'c1', message_id: g, generation_id: g, parent_id: 'u1', model: 'm' };
    const events = [
      sse(g, 1, start),
      sse(g, 2, { type: 'delta', delta: 'Hello ' }),
      sse(g, 3, { type: 'delta', delta: 'world' }),
      sse(g, 4, { type: 'done', message_id: g, status: 'complete', usage: null }),
    ];
    let checkpoint = message(g, 'assistant', 'Hello wo', 'u1', 'streaming');
    let streamed: string | undefined;
    routes.push((url) => {
      if (!url.startsWith('/api/chats/c1')) return undefined;
      if (url.startsWith('/api/chats/c1/events')) return undefined;
      if (checkpoint.status === 'complete') streamed = conversation.messages.at(-1)?.content;
      return json({ ...chat, messages: [message('u1', 'user', 'hi', null), checkpoint] });
    });
    let followed = 0;
    routes.push((url) => {
      if (url !== '/api/chats/c1/events') return undefined;
      followed++;
      if (followed === 1) return stream(events[0] + events[1]); // ends without `done`
      if (followed === 2) return stream(''); // nothing more after a:2 (the answer went quiet)
      checkpoint = message(g, 'assistant', 'Hello world', 'u1');
      return stream(events.join(''));
    });
    await conversation.open('c1');
    await vi.waitFor(() => expect(followed).toBe(3), { timeout: 5000 });
    await vi.waitFor(() => expect(conversation.generating).toBe(false), { timeout: 5000 });
    expect(streamed).toBe('Hello world'); // not the checkpoint plus the events after a2:2
    const gets = calls.filter((c) => c.url === '/api/chats/c1/events').map((c) => c.lastEventId);
    expect(gets).toEqual([undefined, `${g}:2`, undefined]);
  });
});
