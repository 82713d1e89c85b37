/**
 * The open chat: its current branch, and the live answer being streamed into it.
 *
 * Streaming: POST /chat/stream is read with the fetch-based SSE client; if the connection
 * drops, the client follows GET /api/chats/{id}/events with Last-Event-ID. Events carry
 * `<generation id>:<seq>` ids and are applied at most once each, so a resume never
 * duplicates text. Deltas are batched and applied once per animation frame. If streaming
 * cannot start at all, the message is sent again through POST /chat/message.
 */
import { api, apiFetch, HttpError } from './api';
import { chatList } from './chats.svelte';
import { onServerBack, onTabMessage, serverUnreachable, tellOtherTabs, network } from './app.svelte';
import { isNetworkFailure } from './backoff';
import { t } from './i18n';
import { chatUrl, navigate } from './router.svelte';
import { extrasApi } from './extras';
import { resumableStream, type SSEEvent, type SSERequest } from './sse';
import type { Chat, Message, MessageError, MessageStatus, Source, StreamEvent, Usage } from './types';

export interface LiveAnswer {
  messageId: string | null;
  content: string;
  reasoning: string;
  stage: string | null;
  sources: Source[] | null;
  usage: Usage | null;
  error: MessageError | null;
}

function emptyLive(): LiveAnswer {
  return { messageId: null, content: '', reasoning: '', stage: null, sources: null, usage: null, error: null };
}

let localIds = 0;
function localId(kind: string): string {
  return `local-${kind}-${++localIds}`;
}

/** `<generation id>:<seq>` → [generation id, seq]; the generation id may contain colons. */
export function parseEventId(id: string | null): [string, number] | null {
  if (!id) return null;
  const cut = id.lastIndexOf(':');
  if (cut <= 0) return null;
  const seq = Number(id.slice(cut + 1));
  return Number.isInteger(seq) ? [id.slice(0, cut), seq] : null;
}

class Conversation {
  chatId = $state<string | null>(null);
  chat = $state.raw<Chat | null>(null);
  messages = $state.raw<Message[]>([]);
  loading = $state(false);
  notFound = $state(false);
  loadError = $state<string | null>(null);
  live = $state<LiveAnswer>(emptyLive());
  generating = $state(false);
  notice = $state<string | null>(null);
  connection = $state<'idle' | 'open' | 'reconnecting'>('idle');
  focusMessageId = $state<string | null>(null);
  /** A new chat's system prompt, set before its first message (sent with it). */
  pendingSystemPrompt = $state<string | null>(null);
  /** Model for the next message: the chat's, else the browser's default, else the server's. */
  model = $state<string | null>(null);
  /** Agent for a new chat (its first message binds the chat to it). */
  agentId = $state<string | null>(null);

  private abort: AbortController | null = null;
  private pendingContent = '';
  private pendingReasoning = '';
  private frame = 0;
  private applied = new Map<string, number>();
  private openToken = 0;
  // How often we re-followed an answer the store still calls `streaming`: a stale record
  // (its generation gone) must not make us reconnect forever.
  private follows = new Map<string, number>();
  private lastSend: { text: string; options: { parentId?: string | null; model?: string | null } } | null = null;

  constructor() {
    onTabMessage((message) => {
      if (message.type === 'generation' && message.chat_id === this.chatId && !this.generating) {
        void this.reload();
      }
      if (message.type === 'chats-changed') void chatList.refreshTop();
    });
    onServerBack(() => {
      if (this.notice === t.chat.serverUnreachable) this.notice = null;
      const last = this.messages.at(-1);
      if (this.chatId && !this.abort && last?.status === 'streaming') void this.reload();
    });
    window.addEventListener('online', () => {
      const last = this.messages.at(-1);
      if (this.chatId && !this.abort && last?.status === 'streaming') void this.reload();
    });
  }

  get busy(): boolean {
    return this.generating;
  }

  /** Show a chat (optionally the branch through `focus`, scrolled to it). */
  async open(chatId: string, focus: string | null = null): Promise<void> {
    if (chatId === this.chatId && focus === null && !this.notFound) return;
    this.detach();
    const token = ++this.openToken;
    if (chatId !== this.chatId) {
      this.messages = [];
      this.chat = chatList.get(chatId) ?? null;
    }
    this.chatId = chatId;
    this.notFound = false;
    this.loadError = null;
    this.notice = null;
    this.loading = true;
    try {
      const detail = await api.getChat(chatId, focus);
      if (token !== this.openToken) return;
      const { messages, ...chat } = detail;
      this.chat = chat;
      this.model = chat.model;
      this.messages = messages;
      this.focusMessageId = focus;
      const last = messages.at(-1);
      if (last?.role === 'assistant' && last.status === 'streaming') this.follow(chatId, last);
    } catch (error) {
      if (token !== this.openToken) return;
      if (isGone(error)) this.notFound = true;
      else this.loadError = (error as Error).message;
    } finally {
      if (token === this.openToken) this.loading = false;
    }
  }

  /** Fetch the chat again (new branch state, final texts), keeping the selected leaf. */
  async reload(leaf: string | null = null): Promise<void> {
    const chatId = this.chatId;
    if (chatId === null) return;
    const token = this.openToken;
    try {
      const detail = await api.getChat(chatId, leaf ?? this.messages.at(-1)?.id ?? null);
      if (token !== this.openToken || chatId !== this.chatId) return;
      const { messages, ...chat } = detail;
      this.chat = chat;
      this.messages = messages;
      chatList.upsert(chat);
      const last = messages.at(-1);
      if (!this.generating && last?.role === 'assistant' && last.status === 'streaming') this.follow(chatId, last);
    } catch (error) {
      // Deleted meanwhile (another tab): say so, and stop following it. Otherwise keep what is shown.
      if (isGone(error) && token === this.openToken && chatId === this.chatId) {
        this.detach();
        this.openToken++;
        this.messages = [];
        this.notFound = true;
      }
    }
  }

  /** An empty conversation: the next message creates a chat. */
  startNew(): void {
    this.detach();
    this.openToken++;
    this.chatId = null;
    this.chat = null;
    this.messages = [];
    this.notFound = false;
    this.loadError = null;
    this.notice = null;
    this.loading = false;
    this.model = null;
    this.agentId = null;
    this.pendingSystemPrompt = null;
  }

  /** Send a message; `parentId` (an edit) branches from that message instead of the end. */
  async send(text: string, options: { parentId?: string | null; model?: string | null } = {}): Promise<void> {
    const message = text.trim();
    if (!message || this.generating) return;
    this.lastSend = { text, options };
    const branching = options.parentId !== undefined;
    const parentId = branching ? options.parentId : (this.messages.at(-1)?.id ?? null);
    const base = branching ? this.messages.slice(0, this.messages.findIndex((m) => m.id === parentId) + 1) : this.messages;
    const now = new Date().toISOString();
    const chatId = this.chatId;
    const userMessage: Message = {
      id: localId('user'), chat_id: chatId ?? '', parent_id: parentId ?? null, role: 'user', content: text,
      reasoning: null, status: 'complete', model: null, usage: null, sources: null, error: null, created_at: now,
    };
    const answer: Message = {
      ...userMessage, id: localId('answer'), parent_id: userMessage.id, role: 'assistant', content: '',
      status: 'streaming', model: options.model ?? this.model,
    };
    this.messages = [...base, userMessage, answer];
    this.focusMessageId = null;
    this.beginLive(answer.id);
    const body: Record<string, unknown> = { message: text };
    if (chatId) body.chat_id = chatId;
    else {
      if (this.agentId) body.agent_id = this.agentId;
      if (this.pendingSystemPrompt) body.system_prompt = this.pendingSystemPrompt;
    }
    // An edit of the first message sends `parent_id: null` explicitly: a new root.
    if (parentId || branching) body.parent_id = parentId ?? null;
    const model = options.model ?? this.model;
    if (model) body.model = model;
    await this.runStream({ url: '/chat/stream', method: 'POST', body }, body);
  }

  /** Retry a failed answer: answer again, or send again if the message never reached the server. */
  async retry(message: Message): Promise<void> {
    if (!message.id.startsWith('local-')) return this.regenerate(message);
    const last = this.lastSend;
    if (!last || this.generating) return;
    this.messages = this.messages.filter((m) => !m.id.startsWith('local-'));
    await this.send(last.text, last.options);
  }

  async edit(message: Message, text: string): Promise<void> {
    if (message.role !== 'user' || !text.trim()) return;
    await this.send(text, { parentId: message.parent_id });
  }

  async regenerate(message: Message): Promise<void> {
    const chatId = this.chatId;
    if (!chatId || this.generating) return;
    this.notice = null;
    let accepted: { message_id: string; generation_id: string };
    try {
      const body: Record<string, unknown> = {};
      if (this.model) body.model = this.model;
      accepted = await apiJson(`/api/chats/${encodeURIComponent(chatId)}/messages/${encodeURIComponent(message.id)}/regenerate`, body);
    } catch (error) {
      this.notice = (error as Error).message;
      return;
    }
    const questionIndex = this.messages.findIndex((m) => m.id === (message.role === 'assistant' ? message.parent_id : message.id));
    const answer: Message = {
      ...message, id: accepted.message_id, role: 'assistant', parent_id: this.messages[questionIndex]?.id ?? message.parent_id,
      content: '', reasoning: null, status: 'streaming', usage: null, sources: null, error: null,
      created_at: new Date().toISOString(), sibling_ids: undefined,
    };
    this.messages = [...this.messages.slice(0, questionIndex + 1), answer];
    tellOtherTabs({ type: 'generation', chat_id: chatId });
    this.follow(chatId, answer);
  }

  /** Continue a cut or stopped answer: the new text streams into the same message. */
  async continueAnswer(message: Message): Promise<void> {
    const chatId = this.chatId;
    if (!chatId || this.generating || message.role !== 'assistant') return;
    this.notice = null;
    try {
      await extrasApi.continueAnswer(chatId, message.id);
    } catch (error) {
      this.notice = (error as Error).message;
      return;
    }
    const answer: Message = { ...message, status: 'streaming', finish_reason: null, error: null };
    this.messages = this.messages.map((m) => (m.id === message.id ? answer : m));
    tellOtherTabs({ type: 'generation', chat_id: chatId });
    this.follows.delete(message.id); // a new generation: the re-follow budget starts again
    this.follow(chatId, answer);
  }

  /** Delete a message and everything below it; show the branch up to its parent. */
  async deleteMessage(message: Message): Promise<void> {
    const chatId = this.chatId;
    if (!chatId) return;
    await extrasApi.deleteMessage(chatId, message.id);
    if (chatId !== this.chatId) return;
    const index = this.messages.findIndex((m) => m.id === message.id);
    if (index >= 0) this.messages = this.messages.slice(0, index);
    await this.reload(message.parent_id);
    tellOtherTabs({ type: 'chats-changed' });
  }

  /** Rate an answer (0 clears the rating). */
  async setFeedback(message: Message, rating: 1 | -1 | 0, comment?: string | null): Promise<void> {
    const chatId = this.chatId;
    if (!chatId) return;
    const saved = await extrasApi.setFeedback(chatId, message.id, rating, comment);
    this.messages = this.messages.map((m) => (m.id === saved.id ? { ...m, feedback: saved.feedback ?? null } : m));
  }

  async stop(): Promise<void> {
    const chatId = this.chatId;
    if (!chatId) return;
    try {
      await api.stop(chatId);
    } catch {
      // the stream's own end tells us what happened
    }
    if (!this.abort) await this.reload();
  }

  /** Show another branch: the sibling and its latest continuation. */
  async selectBranch(siblingId: string): Promise<void> {
    if (this.generating || !this.chatId) return;
    const token = this.openToken;
    const detail = await api.getChat(this.chatId, siblingId);
    if (token !== this.openToken) return;
    const { messages, ...chat } = detail;
    this.chat = chat;
    this.messages = messages;
  }

  async setModel(model: string | null): Promise<void> {
    this.model = model;
    if (this.chatId && this.chat) {
      this.chat = await api.updateChat(this.chatId, { model });
    }
  }

  /** The chat's system prompt; in a new chat, the one its first message will create it with. */
  get systemPrompt(): string | null {
    return this.chatId ? (this.chat?.system_prompt ?? null) : this.pendingSystemPrompt;
  }

  async setSystemPrompt(prompt: string | null): Promise<void> {
    if (!this.chatId) {
      this.pendingSystemPrompt = prompt;
      return;
    }
    this.chat = await api.updateChat(this.chatId, { system_prompt: prompt });
  }

  /** Stop following the live answer here (the generation goes on on the server). */
  detach(): void {
    this.abort?.abort();
    this.abort = null;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.pendingContent = '';
    this.pendingReasoning = '';
    this.generating = false;
    this.connection = 'idle';
    this.live = emptyLive();
  }

  // -- streaming -----------------------------------------------------------------------

  private beginLive(messageId: string, content = '', reasoning = ''): void {
    this.live = { ...emptyLive(), messageId, content, reasoning };
    this.pendingContent = '';
    this.pendingReasoning = '';
    this.generating = true;
    this.notice = null;
  }

  /** Follow a generation already running on the server (reload, other tab, regenerate). */
  private follow(chatId: string, answer: Message): void {
    const count = (this.follows.get(answer.id) ?? 0) + 1;
    this.follows.set(answer.id, count);
    if (count > 3) return;
    // Without Last-Event-ID the server replays the generation from its start, and `start`
    // resets the text: forget which events were applied, or a stored checkpoint plus the
    // events after our last one would leave a gap.
    this.applied.clear();
    this.beginLive(answer.id, answer.content, answer.reasoning ?? '');
    void this.runStream(this.eventsRequest(chatId), null);
  }

  private eventsRequest(chatId: string): SSERequest {
    return { url: `/api/chats/${encodeURIComponent(chatId)}/events`, method: 'GET' };
  }

  private async runStream(first: SSERequest, fallbackBody: Record<string, unknown> | null): Promise<void> {
    const controller = new AbortController();
    this.abort = controller;
    let finished = false;
    let received = false;
    let sawError = false;
    try {
      const outcome = await resumableStream({
        first,
        fetch: apiFetch,
        signal: controller.signal,
        resume: () => (this.chatId && this.abort === controller ? this.eventsRequest(this.chatId) : null),
        shouldReconnect: () => !sawError,
        onState: (state) => {
          if (this.abort !== controller) return;
          if (state === 'reconnecting') {
            this.connection = 'reconnecting';
            this.notice = t.chat.reconnecting;
          } else if (state === 'open') {
            if (this.connection === 'reconnecting') this.notice = null;
            this.connection = 'open';
          }
        },
        onEvent: (event) => {
          if (this.abort !== controller) return true;
          received = true;
          const result = this.apply(event);
          if (result === 'error') sawError = true;
          if (result === 'done') finished = true;
          return result === 'done';
        },
      });
      if (this.abort !== controller) return;
      if (!finished && outcome !== 'aborted') await this.settle();
    } catch (error) {
      if (this.abort !== controller) return;
      if (!received && isNetworkFailure(error)) {
        // The server is not reachable at all: no fallback (it would fail the same way). The
        // message stays on screen with Retry; the banner goes when the server is back.
        serverUnreachable();
        this.failLive({ code: 'network', message: t.chat.serverUnreachable, retryable: true });
        return;
      }
      if (!received && fallbackBody !== null && shouldFallBack(error)) {
        await this.fallback(fallbackBody);
        return;
      }
      if (!received && error instanceof HttpError) {
        this.failLive({ code: error.code, message: error.message, retryable: error.status >= 500 || error.status === 429 });
        return;
      }
      if (isNetworkFailure(error)) serverUnreachable();
      this.notice = !network.online ? t.app.offline : isNetworkFailure(error) ? t.chat.serverUnreachable : (error as Error).message;
      await this.settle();
    } finally {
      if (this.abort === controller) {
        this.abort = null;
        this.connection = 'idle';
      }
    }
  }

  /** Apply one event at most once; returns what it meant for the stream. */
  private apply(event: SSEEvent): 'done' | 'error' | 'more' {
    const parsed = parseEventId(event.id);
    if (parsed) {
      const [generation, seq] = parsed;
      if (seq <= (this.applied.get(generation) ?? 0)) return 'more';
      this.applied.set(generation, seq);
    }
    let data: StreamEvent;
    try {
      data = JSON.parse(event.data) as StreamEvent;
    } catch {
      return 'more';
    }
    switch (data.type) {
      case 'start':
        this.started(data);
        break;
      case 'delta':
        this.pendingContent += data.delta;
        this.schedule();
        break;
      case 'reasoning':
        this.pendingReasoning += data.delta;
        this.schedule();
        break;
      case 'resync':
        // The server's authoritative text: what was shown (and is still pending) is replaced.
        this.pendingContent = '';
        this.pendingReasoning = '';
        this.live.content = data.content;
        this.live.reasoning = data.reasoning ?? '';
        break;
      case 'status':
        this.live.stage = data.done ? null : data.detail || data.stage;
        break;
      case 'sources':
        this.live.sources = data.sources;
        break;
      case 'usage':
        this.live.usage = { prompt_tokens: data.prompt_tokens, completion_tokens: data.completion_tokens };
        break;
      case 'error':
        this.live.error = { code: data.code, message: data.message, retryable: data.retryable };
        return 'error';
      case 'title':
        if (this.chat) this.chat = { ...this.chat, title: data.title };
        void chatList.refreshTop();
        break;
      case 'done':
        this.flush();
        void this.finish(data.message_id, data.status, data.usage ?? null, data.finish_reason ?? null);
        return 'done';
    }
    return 'more';
  }

  private started(data: Extract<StreamEvent, { type: 'start' }>): void {
    const isNew = this.chatId === null;
    const localAnswer = this.live.messageId;
    // A replay starts from the beginning: drop what a checkpoint had shown (a continued
    // answer starts from the text it continues).
    this.live.messageId = data.message_id;
    this.live.content = data.continues ?? '';
    this.live.reasoning = '';
    this.pendingContent = '';
    this.pendingReasoning = '';
    this.messages = this.messages.map((m) => {
      if (m.id === localAnswer || m.id === data.message_id) {
        return { ...m, id: data.message_id, chat_id: data.chat_id, model: data.model, parent_id: data.parent_id };
      }
      if (m.role === 'user' && m.id.startsWith('local-') && data.user_message_id) {
        return { ...m, id: data.user_message_id, chat_id: data.chat_id };
      }
      return m;
    });
    if (isNew) {
      this.pendingSystemPrompt = null; // the chat holds it now
      this.chatId = data.chat_id;
      navigate(chatUrl(data.chat_id));
      void chatList.refreshTop().then(() => {
        const chat = chatList.get(data.chat_id);
        if (chat && this.chatId === data.chat_id) this.chat = chat;
      });
    }
    if (localAnswer?.startsWith('local-')) tellOtherTabs({ type: 'generation', chat_id: data.chat_id });
  }

  private schedule(): void {
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.frame !== 0) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (this.pendingContent) {
      this.live.content += this.pendingContent;
      this.pendingContent = '';
    }
    if (this.pendingReasoning) {
      this.live.reasoning += this.pendingReasoning;
      this.pendingReasoning = '';
    }
  }

  private async finish(
    messageId: string, status: MessageStatus, usage: Usage | null, finishReason: string | null,
  ): Promise<void> {
    const live = this.live;
    this.messages = this.messages.map((m) =>
      m.id === messageId || m.id === live.messageId
        ? { ...m, id: messageId, content: live.content, reasoning: live.reasoning || null, status,
            usage: usage ?? live.usage, sources: live.sources ?? m.sources, error: live.error,
            finish_reason: finishReason }
        : m,
    );
    this.generating = false;
    this.live = emptyLive();
    this.abort = null;
    await this.reload(messageId);
    this.refreshTitleSoon();
  }

  /** The stream ended without `done` (gave up, or nothing live): trust the store. */
  private async settle(): Promise<void> {
    this.flush();
    const messageId = this.live.messageId;
    this.generating = false;
    this.live = emptyLive();
    await this.reload(messageId && !messageId.startsWith('local-') ? messageId : null);
  }

  private failLive(error: MessageError): void {
    const id = this.live.messageId;
    this.messages = this.messages.map((m) => (m.id === id ? { ...m, status: 'error', error } : m));
    this.generating = false;
    this.live = emptyLive();
  }

  /** Streaming is unavailable here (e.g. a buffering proxy): wait for the whole answer. */
  private async fallback(body: Record<string, unknown>): Promise<void> {
    this.notice = t.chat.fallbackNotice;
    try {
      const answer = await api.sendMessage(body);
      if (this.chatId === null) {
        this.chatId = answer.chat_id;
        navigate(chatUrl(answer.chat_id));
      }
      this.generating = false;
      this.live = emptyLive();
      await this.reload(answer.id);
      void chatList.refreshTop();
      this.refreshTitleSoon();
    } catch (error) {
      if (isNetworkFailure(error)) {
        serverUnreachable();
        this.notice = null;
        this.failLive({ code: 'network', message: t.chat.serverUnreachable, retryable: true });
        return;
      }
      const e = error as HttpError;
      this.failLive({ code: e.code ?? 'network', message: e.message, retryable: true });
    }
  }

  /** The list shows the new chat and its last activity; its title arrives as a `title`
   * notice (lib/feed.ts), with no polling. */
  private refreshTitleSoon(): void {
    void chatList.refreshTop();
    tellOtherTabs({ type: 'chats-changed' });
  }

  /** A title pushed by the server for a chat (maybe this one). */
  applyTitle(chatId: string, title: string): void {
    if (this.chatId === chatId && this.chat && this.chat.title !== title) this.chat = { ...this.chat, title };
  }
}

/** The object a route points at is not there for us (unknown, deleted, someone else's): never retry. */
export function isGone(error: unknown): boolean {
  return error instanceof HttpError && (error.status === 403 || error.status === 404 || error.status === 410);
}

function shouldFallBack(error: unknown): boolean {
  if (error instanceof HttpError) return error.status === 404 || error.status === 502 || error.status === 504;
  return true; // network failure or a response that is not an event stream
}

async function apiJson<T>(path: string, body: unknown): Promise<T> {
  const response = await apiFetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const data = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!response.ok) {
    throw new HttpError(response.status, data?.error?.code ?? 'http_error', data?.error?.message ?? response.statusText, data);
  }
  return data as T;
}

export const conversation = new Conversation();
