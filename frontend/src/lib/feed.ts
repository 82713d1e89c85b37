/**
 * The signed-in user's notifications (GET /api/events, server-sent events): today `title`
 * when a chat gets its title after its answer ended. One connection per tab, resumed with
 * Last-Event-ID after a drop (backoff up to 30 s); it stops for good on a client error
 * (signed out) or when stopped.
 */
import { apiFetch, HttpError } from './api';
import { readSSE } from './sse';

export interface TitleNotice {
  type: 'title';
  chat_id: string;
  title: string;
}

export type UserEvent = TitleNotice;

const FIRST_DELAY = 1000;
const MAX_DELAY = 30_000;

/** The next wait after a failed or ended connection. */
export function nextDelay(delay: number): number {
  return Math.min(MAX_DELAY, delay * 2);
}

/** Whether a failed connection is worth trying again (not a refusal such as 401 or 404). */
export function retryable(error: unknown): boolean {
  if (!(error instanceof HttpError)) return true;
  return error.status >= 500 || error.status === 408 || error.status === 429;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Start following the feed; returns the function that stops it. */
export function startUserFeed(onEvent: (event: UserEvent) => void): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  let lastEventId: string | null = null;
  void (async () => {
    let delay = FIRST_DELAY;
    while (!signal.aborted) {
      try {
        await readSSE({ url: '/api/events' }, {
          fetch: apiFetch,
          signal,
          lastEventId,
          onOpen: () => { delay = FIRST_DELAY; },
          onEvent: (event) => {
            lastEventId = event.id;
            try {
              onEvent(JSON.parse(event.data) as UserEvent);
            } catch {
              // not JSON: ignore it
            }
          },
        });
      } catch (error) {
        if (signal.aborted || !retryable(error)) return;
      }
      await wait(delay, signal);
      delay = nextDelay(delay);
    }
  })();
  return () => controller.abort();
}
