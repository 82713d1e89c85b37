/**
 * Drives applyEvent over one answer's stream: reads POST /chat/stream (or GET
 * /api/chats/{id}/events) with the fetch-based SSE client, resumes a dropped connection
 * with Last-Event-ID, applies each event at most once (ids are `<generation id>:<seq>`, so
 * a replay never duplicates text), batches deltas into one update per animation frame, and
 * falls back to POST /chat/message when streaming cannot start at all (e.g. a buffering
 * proxy). It keeps no conversation state: it reads and writes the store's through hooks.
 */
import { api, apiFetch, HttpError } from './api';
import { applyEvent, coalesce, type AnswerState, type StreamEvent } from './applyEvent';
import { isNetworkFailure } from './backoff';
import { t } from './i18n';
import { resumableStream, type SSEEvent, type SSERequest } from './sse';
import type { Message, MessageError } from './types';

/** `<generation id>:<seq>` → [generation id, seq]; the generation id may contain colons. */
export function parseEventId(id: string | null): [string, number] | null {
  if (!id) return null;
  const cut = id.lastIndexOf(':');
  if (cut <= 0) return null;
  const seq = Number(id.slice(cut + 1));
  return Number.isInteger(seq) ? [id.slice(0, cut), seq] : null;
}

export interface StreamHooks {
  /** The state the next events apply to (the store's, which other actions may change). */
  read(): AnswerState;
  /** Keep the state after `events` (one frame's batch, or one event). */
  write(next: AnswerState, prev: AnswerState, events: StreamEvent[]): void;
  /** The connection is open, or dropped and being resumed. */
  connection?(state: 'open' | 'reconnecting'): void;
  /** Streaming could not start: the message goes through POST /chat/message instead. */
  fallingBack?(): void;
}

export type RunOutcome =
  /** `done` was applied. */
  | { kind: 'done'; messageId: string }
  /** The stream ended (or broke after some events) without `done`: the store knows the rest. */
  | { kind: 'ended'; error: unknown }
  /** Stopped here (detached, or another run began). */
  | { kind: 'aborted' }
  /** Nothing was streamed and the answer could not be had: show it failed on the message. */
  | { kind: 'failed'; error: MessageError; unreachable: boolean }
  /** Answered without streaming (the fallback). */
  | { kind: 'answered'; answer: Message };

export interface RunOptions {
  /** Where to resume after a drop (null: not resumable). */
  resume: () => SSERequest | null;
  /** The message to send through POST /chat/message if streaming cannot start. */
  fallbackBody?: Record<string, unknown> | null;
}

export interface ControllerDeps {
  fetch: typeof fetch;
  sendMessage: (body: Record<string, unknown>) => Promise<Message>;
  requestFrame: (callback: () => void) => number;
  cancelFrame: (handle: number) => void;
}

const browserDeps: ControllerDeps = {
  fetch: apiFetch,
  sendMessage: (body) => api.sendMessage(body),
  requestFrame: (callback) => requestAnimationFrame(callback),
  cancelFrame: (handle) => cancelAnimationFrame(handle),
};

export class StreamController {
  private token: AbortController | null = null;
  private applied = new Map<string, number>();
  private queue: StreamEvent[] = [];
  private frame = 0;

  constructor(
    private readonly hooks: StreamHooks,
    private readonly deps: ControllerDeps = browserDeps,
  ) {}

  /** A stream is being followed. */
  get running(): boolean {
    return this.token !== null;
  }

  /** The next stream replays the generation from its start (no Last-Event-ID): forget
   * which events were applied, or a checkpoint plus the events after ours would leave a gap. */
  forget(): void {
    this.applied.clear();
  }

  /** Stop following here (the generation goes on on the server); pending deltas are dropped. */
  stop(): void {
    this.token?.abort();
    this.token = null;
    this.queue = [];
    if (this.frame !== 0) this.deps.cancelFrame(this.frame);
    this.frame = 0;
  }

  async run(first: SSERequest, options: RunOptions): Promise<RunOutcome> {
    this.stop();
    const token = new AbortController();
    this.token = token;
    let received = false;
    let sawError = false;
    let doneId: string | null = null;
    try {
      const outcome = await resumableStream({
        first,
        fetch: this.deps.fetch,
        signal: token.signal,
        resume: () => (this.token === token ? options.resume() : null),
        // After `error` only `done` can follow: a stream that ends there is not resumed.
        shouldReconnect: () => !sawError,
        onState: (state) => {
          if (this.token === token && (state === 'open' || state === 'reconnecting')) this.hooks.connection?.(state);
        },
        onEvent: (raw) => {
          if (this.token !== token) return true;
          received = true;
          const event = this.accept(raw);
          if (event === null) return false;
          if (event.type === 'error') sawError = true;
          this.push(event);
          if (event.type === 'done') doneId = event.message_id;
          return doneId !== null;
        },
      });
      if (this.token !== token || outcome === 'aborted') return { kind: 'aborted' };
      this.flush();
      return doneId !== null ? { kind: 'done', messageId: doneId } : { kind: 'ended', error: null };
    } catch (error) {
      if (this.token !== token) return { kind: 'aborted' };
      this.flush();
      if (received) return { kind: 'ended', error };
      if (isNetworkFailure(error)) {
        // The server is not reachable at all: no fallback (it would fail the same way).
        return { kind: 'failed', unreachable: true, error: unreachableError() };
      }
      // `await`: the run stays current (see finally) until the fallback has answered.
      if (options.fallbackBody && shouldFallBack(error)) return await this.fallback(token, options.fallbackBody);
      if (error instanceof HttpError) {
        const retryable = error.status >= 500 || error.status === 429;
        return { kind: 'failed', unreachable: false, error: { code: error.code, message: error.message, retryable } };
      }
      return { kind: 'ended', error };
    } finally {
      if (this.token === token) this.token = null;
    }
  }

  private async fallback(token: AbortController, body: Record<string, unknown>): Promise<RunOutcome> {
    this.hooks.fallingBack?.();
    try {
      const answer = await this.deps.sendMessage(body);
      return this.token === token ? { kind: 'answered', answer } : { kind: 'aborted' };
    } catch (error) {
      if (this.token !== token) return { kind: 'aborted' };
      if (isNetworkFailure(error)) return { kind: 'failed', unreachable: true, error: unreachableError() };
      const e = error as HttpError;
      return { kind: 'failed', unreachable: false, error: { code: e.code ?? 'network', message: e.message, retryable: true } };
    }
  }

  /** The event, once: null when already applied (a replay) or not an event at all. */
  private accept(raw: SSEEvent): StreamEvent | null {
    const parsed = parseEventId(raw.id);
    if (parsed) {
      const [generation, seq] = parsed;
      if (seq <= (this.applied.get(generation) ?? 0)) return null;
      this.applied.set(generation, seq);
    }
    try {
      const data: unknown = JSON.parse(raw.data);
      if (typeof data === 'object' && data !== null && typeof (data as { type?: unknown }).type === 'string') {
        return data as StreamEvent;
      }
    } catch {
      // not JSON: skip it
    }
    return null;
  }

  /** Deltas wait for the next frame; any other event applies now, after them, in order. */
  private push(event: StreamEvent): void {
    this.queue.push(event);
    if (event.type !== 'delta' && event.type !== 'reasoning') {
      this.flush();
    } else if (this.frame === 0) {
      this.frame = this.deps.requestFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.frame !== 0) this.deps.cancelFrame(this.frame);
    this.frame = 0;
    if (this.queue.length === 0) return;
    const events = coalesce(this.queue);
    this.queue = [];
    const prev = this.hooks.read();
    this.hooks.write(events.reduce(applyEvent, prev), prev, events);
  }
}

function unreachableError(): MessageError {
  return { code: 'network', message: t.chat.serverUnreachable, retryable: true };
}

function shouldFallBack(error: unknown): boolean {
  if (error instanceof HttpError) return error.status === 404 || error.status === 502 || error.status === 504;
  return true; // a response that is not an event stream
}
