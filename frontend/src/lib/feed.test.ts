// @vitest-environment jsdom
import { describe, expect, it, vi } from 'vitest';
import { startUserFeed, type UserEvent } from './feed';

const encoder = new TextEncoder();

/** An event stream: the chunks, then it ends, or stays open until the request is aborted. */
function stream(text: string, signal: AbortSignal | null | undefined, end: boolean): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(encoder.encode(text));
      } else if (end) {
        controller.close();
      } else {
        return new Promise<void>((resolve) => signal?.addEventListener('abort', () => {
          controller.error(new DOMException('aborted', 'AbortError'));
          resolve();
        }));
      }
    },
  });
  return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
}

describe('startUserFeed', () => {
  it('delivers notices, resumes with Last-Event-ID, and asks for one refresh per reconnection', async () => {
    const requests: Array<string | undefined> = [];
    const scripts = [
      // The first connection sees a title, then the server goes away.
      'id: 100\nevent: title\ndata: {"type":"title","chat_id":"c1","title":"One"}\n\n',
      // It comes back: the connection stays open.
      ': open\n\nid: 200\nevent: title\ndata: {"type":"title","chat_id":"c2","title":"Two"}\n\n',
    ];
    const fake = (async (_input: RequestInfo | URL, init: RequestInit = {}) => {
      requests.push((init.headers as Record<string, string>)['Last-Event-ID']);
      const text = scripts.shift();
      if (text === undefined) throw new Error('unexpected connection');
      return stream(text, init.signal, scripts.length === 1);
    }) as typeof fetch;
    const events: UserEvent[] = [];
    let refreshes = 0;
    const stop = startUserFeed((event) => events.push(event), { fetch: fake, firstDelay: 1, onReconnect: () => refreshes++ });
    try {
      await vi.waitFor(() => expect(events).toHaveLength(2));
      expect(events.map((e) => e.title)).toEqual(['One', 'Two']);
      expect(requests).toEqual([undefined, '100']);
      expect(refreshes).toBe(1);
    } finally {
      stop();
    }
  });
});
