/**
 * The open chat: its current branch, and the live answer being streamed into it.
 *
 * What each stream event does is the pure applyEvent (applyEvent.ts); reading the stream
 * (resume with Last-Event-ID, each event once, deltas per animation frame, the fallback to
 * POST /chat/message) is the StreamController's (streamController.ts). This store keeps the
 * state and does what follows from it: navigation, reloads, telling other tabs. The chat's
 * record itself lives once, in the chat list's store (chats.svelte.ts).
 */
import { api, isGone } from './api';
import { emptyLive, type AnswerState, type LiveAnswer, type StreamEvent } from './applyEvent';
import { chatList } from './chats.svelte';
import { onServerBack, onTabMessage, serverUnreachable, tellOtherTabs, network } from './app.svelte';
import { isNetworkFailure } from './backoff';
import { t } from './i18n';
import { outgoing, type SendOptions } from './outgoing';
import { chatUrl, navigate } from './router.svelte';
import { extrasApi } from './extras';
import type { SSERequest } from './sse';
import { StreamController } from './streamController';
import type { Chat, Message, MessageError } from './types';

export type { LiveAnswer } from './applyEvent';
export { parseEventId } from './streamController';

class Conversation {
  chatId = $state<string | null>(null);
  messages = $state.raw<Message[]>([]);
  loading = $state(false);
  notFound = $state(false);
  loadError = $state<string | null>(null);
  live = $state.raw<LiveAnswer>(emptyLive());
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

  private openToken = 0;
  private follows = new Map<string, number>();
  private lastSend: { text: string; options: SendOptions } | null = null;

  private stream = new StreamController({
    read: (): AnswerState => ({ chatId: this.chatId, messages: this.messages, live: this.live }),
    write: (next, prev, events) => this.write(next, prev, events),
    connection: (state) => {
      if (state === 'reconnecting') this.notice = t.chat.reconnecting;
      else if (this.connection === 'reconnecting') this.notice = null;
      this.connection = state;
    },
    fallingBack: () => (this.notice = t.chat.fallbackNotice),
  });

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
      if (this.chatId && !this.stream.running && last?.status === 'streaming') void this.reload();
    });
    window.addEventListener('online', () => {
      const last = this.messages.at(-1);
      if (this.chatId && !this.stream.running && last?.status === 'streaming') void this.reload();
    });
  }

  get busy(): boolean {
    return this.generating;
  }

  /** The open chat's record: the one copy, kept by the chat list's store. */
  get chat(): Chat | null {
    return this.chatId === null ? null : (chatList.get(this.chatId) ?? null);
  }

  /** Show a chat (optionally the branch through `focus`, scrolled to it). */
  async open(chatId: string, focus: string | null = null): Promise<void> {
    if (chatId === this.chatId && focus === null && !this.notFound) return;
    this.detach();
    const token = ++this.openToken;
    if (chatId !== this.chatId) this.messages = [];
    this.chatId = chatId;
    this.notFound = false;
    this.loadError = null;
    this.notice = null;
    this.loading = true;
    try {
      const detail = await api.getChat(chatId, focus);
      if (token !== this.openToken) return;
      const { messages, ...chat } = detail;
      chatList.put(chat);
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
  async send(text: string, options: SendOptions = {}): Promise<void> {
    if (!text.trim() || this.generating) return;
    this.lastSend = { text, options };
    const context = { chatId: this.chatId, model: this.model, agentId: this.agentId, systemPrompt: this.pendingSystemPrompt };
    const { messages, answerId, body } = outgoing(this.messages, text, options, context);
    this.messages = messages;
    this.focusMessageId = null;
    this.beginLive(answerId);
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
    let accepted: { message_id: string };
    try {
      accepted = await extrasApi.regenerate(chatId, message.id, this.model ? { model: this.model } : {});
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
    if (!this.stream.running) await this.reload();
  }

  /** Show another branch: the sibling and its latest continuation. */
  async selectBranch(siblingId: string): Promise<void> {
    if (this.generating || !this.chatId) return;
    const token = this.openToken;
    const detail = await api.getChat(this.chatId, siblingId);
    if (token !== this.openToken) return;
    const { messages, ...chat } = detail;
    chatList.put(chat);
    this.messages = messages;
  }

  async setModel(model: string | null): Promise<void> {
    this.model = model;
    if (this.chatId && this.chat) {
      chatList.put(await api.updateChat(this.chatId, { model }));
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
    chatList.put(await api.updateChat(this.chatId, { system_prompt: prompt }));
  }

  /** Stop following the live answer here (the generation goes on on the server). */
  detach(): void {
    this.stream.stop();
    this.generating = false;
    this.connection = 'idle';
    this.live = emptyLive();
  }

  // -- streaming -----------------------------------------------------------------------

  private beginLive(messageId: string, content = '', reasoning = ''): void {
    this.live = emptyLive(messageId, content, reasoning);
    this.generating = true;
    this.notice = null;
  }

  /** Follow a generation already running on the server (reload, other tab, regenerate). */
  private follow(chatId: string, answer: Message): void {
    // How often we re-followed an answer the store still calls `streaming`: a stale record
    // (its generation gone) must not make us reconnect forever.
    const count = (this.follows.get(answer.id) ?? 0) + 1;
    this.follows.set(answer.id, count);
    if (count > 3) return;
    // Without Last-Event-ID the server replays the generation from its start.
    this.stream.forget();
    this.beginLive(answer.id, answer.content, answer.reasoning ?? '');
    void this.runStream(this.eventsRequest(chatId), null);
  }

  private eventsRequest(chatId: string): SSERequest {
    return { url: `/api/chats/${encodeURIComponent(chatId)}/events`, method: 'GET' };
  }

  private async runStream(first: SSERequest, fallbackBody: Record<string, unknown> | null): Promise<void> {
    const outcome = await this.stream.run(first, {
      resume: () => (this.chatId ? this.eventsRequest(this.chatId) : null),
      fallbackBody,
    });
    if (outcome.kind === 'aborted') return; // detached, or another stream took over
    this.connection = 'idle';
    if (outcome.kind === 'done') {
      this.generating = false;
      await this.reload(outcome.messageId);
      this.listChanged();
    } else if (outcome.kind === 'ended') {
      const error = outcome.error;
      if (error != null) {
        if (isNetworkFailure(error)) serverUnreachable();
        this.notice = !network.online ? t.app.offline : isNetworkFailure(error) ? t.chat.serverUnreachable : (error as Error).message;
      }
      await this.settle();
    } else if (outcome.kind === 'failed') {
      // The message stays on screen with Retry; when unreachable, the banner goes when the server is back.
      if (outcome.unreachable) {
        serverUnreachable();
        this.notice = null;
      }
      this.failLive(outcome.error);
    } else {
      const answer = outcome.answer;
      if (this.chatId === null) {
        this.chatId = answer.chat_id;
        navigate(chatUrl(answer.chat_id));
      }
      this.generating = false;
      this.live = emptyLive();
      await this.reload(answer.id);
      this.listChanged();
    }
  }

  /** Keep what the stream's events made of the state, and do what follows from a `start`. */
  private write(next: AnswerState, prev: AnswerState, events: StreamEvent[]): void {
    this.messages = next.messages;
    this.live = next.live;
    if (!events.some((e) => e.type === 'start') || next.chatId === null) return;
    if (prev.chatId === null) {
      this.pendingSystemPrompt = null; // the chat holds it now
      this.chatId = next.chatId;
      navigate(chatUrl(next.chatId));
      void chatList.refreshTop();
    }
    if (prev.live.messageId?.startsWith('local-')) tellOtherTabs({ type: 'generation', chat_id: next.chatId });
  }

  /** The stream ended without `done` (gave up, or nothing live): trust the store. */
  private async settle(): Promise<void> {
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

  /** The list shows the new chat and its last activity (its title arrives as a `title`
   * notice on /api/events, lib/feed.ts: no polling), and so do the other tabs'. */
  private listChanged(): void {
    void chatList.refreshTop();
    tellOtherTabs({ type: 'chats-changed' });
  }
}

export const conversation = new Conversation();
