/**
 * A fetch-based Server-Sent Events client.
 *
 * EventSource cannot POST, cannot send our CSRF header and hides HTTP errors, so we read
 * the body ourselves: bytes are decoded with a streaming TextDecoder (a multi-byte
 * character split across two chunks survives), lines are buffered until complete, and a
 * dropped connection is resumed with `Last-Event-ID` after an exponential backoff.
 */

export interface SSEEvent {
  /** The event's `id:` (or the last one seen, as the SSE spec says). */
  id: string | null;
  /** The `event:` field, `message` when absent. */
  event: string;
  data: string;
}

/** Incremental parser of the `text/event-stream` format (WHATWG HTML §9.2.6). */
export class SSEParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private lastId: string | null = null;
  private skipLineFeed = false;
  private started = false;
  /** The last `retry:` value in milliseconds, if the server sent one. */
  retry: number | null = null;
  /** Comment lines seen (`: ping`): lets a watchdog know the connection is alive. */
  comments = 0;

  constructor(lastEventId: string | null = null) {
    this.lastId = lastEventId;
  }

  /** Feed decoded text; returns the events completed by it. */
  feed(text: string): SSEEvent[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLineFeed && text.startsWith('\n')) text = text.slice(1);
    this.skipLineFeed = false;
    this.buffer += text;
    const events: SSEEvent[] = [];
    let start = 0;
    const buffer = this.buffer;
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      this.line(buffer.slice(start, i), events);
      if (ch === 13) {
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          // A CR at the end of a chunk may be the first half of CRLF.
          this.skipLineFeed = true;
        }
      }
      start = i + 1;
    }
    this.buffer = buffer.slice(start);
    return events;
  }

  private line(line: string, events: SSEEvent[]): void {
    if (line === '') {
      if (this.data.length > 0) {
        events.push({ id: this.lastId, event: this.eventType || 'message', data: this.data.join('\n') });
      }
      this.data = [];
      this.eventType = '';
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The response was not an event stream (e.g. a proxy answered with an HTML page). */
export class NotAStreamError extends Error {
  constructor(readonly contentType: string) {
    super(`expected text/event-stream, got ${contentType || 'nothing'}`);
    this.name = 'NotAStreamError';
  }
}

export interface SSERequest {
  url: string;
  method?: 'GET' | 'POST';
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ReadOptions {
  signal?: AbortSignal;
  lastEventId?: string | null;
  fetch?: typeof fetch;
  onOpen?: (response: Response) => void;
  onEvent: (event: SSEEvent) => boolean | void;
  onComment?: () => void;
}

export interface ReadResult {
  lastEventId: string | null;
  events: number;
  /** True when onEvent returned true (the caller saw the end of the stream). */
  finished: boolean;
  retry: number | null;
}

async function errorFromResponse(response: Response): Promise<HttpError> {
  let body: unknown = null;
  let code = 'http_error';
  let message = `${response.status} ${response.statusText}`;
  try {
    body = await response.json();
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    if (error?.code) code = error.code;
    if (error?.message) message = error.message;
  } catch {
    // not JSON: keep the status line
  }
  return new HttpError(response.status, code, message, body);
}

/** One connection: read events until the body ends or onEvent returns true. */
export async function readSSE(request: SSERequest, options: ReadOptions): Promise<ReadResult> {
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { Accept: 'text/event-stream', ...request.headers };
  if (options.lastEventId) headers['Last-Event-ID'] = options.lastEventId;
  let body: string | undefined;
  if (request.body !== undefined) {
    body = JSON.stringify(request.body);
    headers['Content-Type'] = 'application/json';
  }
  const response = await doFetch(request.url, {
    method: request.method ?? 'GET',
    headers,
    body,
    credentials: 'same-origin',
    cache: 'no-store',
    signal: options.signal,
  });
  if (!response.ok) throw await errorFromResponse(response);
  const contentType = response.headers.get('Content-Type') ?? '';
  if (!contentType.startsWith('text/event-stream') || response.body === null) {
    throw new NotAStreamError(contentType);
  }
  options.onOpen?.(response);
  const parser = new SSEParser(options.lastEventId ?? null);
  const decoder = new TextDecoder('utf-8');
  const reader = response.body.getReader();
  const result: ReadResult = { lastEventId: options.lastEventId ?? null, events: 0, finished: false, retry: null };
  let comments = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (const event of parser.feed(text)) {
        result.events++;
        result.lastEventId = event.id;
        if (options.onEvent(event) === true) {
          result.finished = true;
          break;
        }
      }
      if (parser.comments !== comments) {
        comments = parser.comments;
        options.onComment?.();
      }
      if (done || result.finished) break;
    }
  } finally {
    result.retry = parser.retry;
    if (result.finished) {
      await reader.cancel().catch(() => undefined);
    } else {
      reader.releaseLock();
    }
  }
  return result;
}

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ResumableOptions {
  /** The first request (e.g. POST /chat/stream). */
  first: SSERequest;
  /** How to reconnect after a drop; null when the stream cannot be resumed. */
  resume: (lastEventId: string | null) => SSERequest | null;
  /** Returns true when the event ends the stream (no reconnect after it). */
  onEvent: (event: SSEEvent) => boolean | void;
  onState?: (state: StreamState, detail?: { attempt: number; delay: number; error?: unknown }) => void;
  onComment?: () => void;
  /** Called when the body ended without a terminal event: return false to stop there. */
  shouldReconnect?: () => boolean;
  signal?: AbortSignal;
  lastEventId?: string | null;
  maxAttempts?: number;
  baseDelay?: number;
  maxDelay?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export type StreamOutcome = 'finished' | 'ended' | 'aborted';

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (error instanceof DOMException && error.name === 'AbortError');
}

/** Client errors are final (a retry would fail the same way), except timeouts and rate limits. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof HttpError) {
    return error.status >= 500 || error.status === 408 || error.status === 429;
  }
  return !(error instanceof NotAStreamError);
}

/**
 * Follow a stream across drops: reconnect with `Last-Event-ID` and exponential backoff
 * (with jitter) until a terminal event, an abort, or too many failed attempts in a row.
 * Rejects with the first request's error when it fails before any event arrived, so the
 * caller can fall back to a non-streaming request.
 */
export async function resumableStream(options: ResumableOptions): Promise<StreamOutcome> {
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const maxAttempts = options.maxAttempts ?? 8;
  const baseDelay = options.baseDelay ?? 500;
  const maxDelay = options.maxDelay ?? 15_000;
  let lastEventId = options.lastEventId ?? null;
  let request: SSERequest | null = options.first;
  let attempt = 0;
  let receivedAny = false;
  let serverRetry: number | null = null;
  options.onState?.('connecting');
  while (request !== null) {
    try {
      const result = await readSSE(request, {
        signal: options.signal,
        lastEventId,
        fetch: options.fetch,
        onOpen: () => options.onState?.('open'),
        onComment: options.onComment,
        onEvent: (event) => {
          receivedAny = true;
          attempt = 0;
          lastEventId = event.id;
          return options.onEvent(event);
        },
      });
      if (result.retry !== null) serverRetry = result.retry;
      if (result.finished) {
        options.onState?.('closed');
        return 'finished';
      }
      if (options.shouldReconnect && !options.shouldReconnect()) {
        options.onState?.('closed');
        return 'ended';
      }
      if (result.events === 0 && request.method !== 'POST') {
        // The server had nothing more to say (no live generation): do not spin.
        options.onState?.('closed');
        return 'ended';
      }
    } catch (error) {
      if (isAbort(error, options.signal)) {
        options.onState?.('closed');
        return 'aborted';
      }
      if (!receivedAny && request === options.first) throw error;
      if (!isRetryable(error) || attempt + 1 >= maxAttempts) {
        options.onState?.('closed');
        throw error;
      }
      attempt++;
      const delay = Math.max(
        serverRetry ?? 0,
        Math.min(maxDelay, baseDelay * 2 ** (attempt - 1)) * (0.5 + random() / 2),
      );
      options.onState?.('reconnecting', { attempt, delay, error });
      await sleep(delay, options.signal);
      if (options.signal?.aborted) {
        options.onState?.('closed');
        return 'aborted';
      }
      request = options.resume(lastEventId);
      continue;
    }
    // The body ended without a terminal event: resume where we are.
    request = options.resume(lastEventId);
    if (request !== null) options.onState?.('reconnecting', { attempt, delay: 0 });
  }
  options.onState?.('closed');
  return 'ended';
}
