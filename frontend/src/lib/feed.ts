/**
 * The signed-in user's notifications (GET /api/events, server-sent events): today `title`
 * when a chat gets its title after its answer ended. One connection per tab, resumed with
 * Last-Event-ID after a drop (backoff up to 30 s); it stops for good on a client error
 * (signed out) or when stopped.
 *
 * The server replays what a resumed connection missed only while it keeps the user's
 * notifications (a few minutes), and only after an event the tab has seen (a connection
 * that dropped before its first event resumes from "now"): so each reconnection calls
 * `onReconnect` once, for the caller to read the state again (e.g. the chat list).
 */
import { apiFetch, HttpError } from './api';
import type { UserEvent } from './events.gen';
import { readSSE } from './sse';

export type { UserEvent } from './events.gen';

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
export function startUserFeed(
  onEvent: (event: UserEvent) => void,
  options: { onReconnect?: () => void; fetch?: typeof fetch; firstDelay?: number } = {},
): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  let lastEventId: string | null = null;
  let opened = false;
  void (async () => {
    const firstDelay = options.firstDelay ?? FIRST_DELAY;
    let delay = firstDelay;
    while (!signal.aborted) {
      try {
        await readSSE({ url: '/api/events' }, {
          fetch: options.fetch ?? apiFetch,
          signal,
          lastEventId,
          onOpen: () => {
            delay = firstDelay;
            if (opened) options.onReconnect?.();
            opened = true;
          },
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
