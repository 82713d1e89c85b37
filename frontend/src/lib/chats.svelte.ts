/** The sidebar's chat list: pages newest first, local edits, delete with undo. */
import { api } from './api';
import { extrasApi } from './extras';
import type { Chat } from './types';

const PAGE = 40;
export const UNDO_MS = 6000;

function newestFirst(a: Chat, b: Chat): number {
  if (a.updated_at !== b.updated_at) return a.updated_at < b.updated_at ? 1 : -1;
  return a.id < b.id ? 1 : -1;
}

export interface PendingDelete {
  chat: Chat;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Every chat record this tab knows lives here once: the list's, and the open chat's even
 * when the list does not show it (archived, filtered out, not paged in yet). The sidebar's
 * rows and the conversation's `chat` are read from it, so a change (a pushed title, a
 * rename, a new model) is made in one place and shown everywhere.
 */
class ChatList {
  private records = $state.raw<ReadonlyMap<string, Chat>>(new Map());
  /** The ids the sidebar lists, in its order. */
  private listed = $state.raw<string[]>([]);
  readonly items: Chat[] = $derived(
    this.listed.map((id) => this.records.get(id)).filter((c): c is Chat => c !== undefined),
  );
  nextCursor = $state<string | null>(null);
  loading = $state(false);
  loaded = $state(false);
  archived = $state(false);
  /** Only chats with this tag (null: all). */
  tag = $state<string | null>(null);
  /** Every tag seen on a loaded chat, for the filter. */
  knownTags = $state.raw<string[]>([]);
  error = $state<string | null>(null);
  pendingDeletes = $state.raw<PendingDelete[]>([]);
  private generation = 0;
  private topSeq = 0;

  get pinned(): Chat[] {
    return this.items.filter((c) => c.pinned);
  }

  get recent(): Chat[] {
    return this.items.filter((c) => !c.pinned);
  }

  async reload(): Promise<void> {
    const generation = ++this.generation;
    this.loading = true;
    this.error = null;
    try {
      const page = await api.listChats({ limit: PAGE, archived: this.archived, tag: this.tag });
      if (generation !== this.generation) return;
      this.setList(this.visible(page.items));
      this.nextCursor = page.next_cursor;
      this.loaded = true;
    } catch (error) {
      if (generation === this.generation) this.error = (error as Error).message;
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  async loadMore(): Promise<void> {
    if (this.loading || this.nextCursor === null) return;
    const generation = this.generation;
    this.loading = true;
    try {
      const page = await api.listChats({ limit: PAGE, cursor: this.nextCursor, archived: this.archived, tag: this.tag });
      if (generation !== this.generation) return;
      const known = new Set(this.items.map((c) => c.id));
      this.setList([...this.items, ...this.visible(page.items.filter((c) => !known.has(c.id)))]);
      this.nextCursor = page.next_cursor;
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  /** Refresh the first page without losing what was scrolled in (new titles, new chats). */
  async refreshTop(): Promise<void> {
    const seq = ++this.topSeq;
    try {
      const page = await api.listChats({ limit: PAGE, archived: this.archived, tag: this.tag });
      if (seq !== this.topSeq) return; // a later refresh is on its way: this one may be stale
      const fresh = new Map(page.items.map((c) => [c.id, c]));
      const merged = this.items.map((c) => fresh.get(c.id) ?? c);
      const known = new Set(merged.map((c) => c.id));
      merged.push(...page.items.filter((c) => !known.has(c.id)));
      this.setList(this.visible(merged).sort(newestFirst));
    } catch {
      // the list stays as it was; the next refresh will catch up
    }
  }

  async showArchived(archived: boolean): Promise<void> {
    this.archived = archived;
    this.listed = [];
    this.nextCursor = null;
    await this.reload();
  }

  async filterByTag(tag: string | null): Promise<void> {
    this.tag = tag;
    this.listed = [];
    this.nextCursor = null;
    await this.reload();
  }

  async setTags(chat: Chat, tags: string[]): Promise<Chat> {
    const saved = await extrasApi.setTags(chat.id, tags);
    this.learnTags([saved]);
    this.upsert(saved);
    return saved;
  }

  private learnTags(chats: Chat[]): void {
    const all = new Set(this.knownTags);
    for (const chat of chats) for (const tag of chat.tags ?? []) all.add(tag);
    if (all.size !== this.knownTags.length) this.knownTags = [...all].sort();
  }

  /** The server's copy of a chat: kept, and listed (in order) when it belongs to the list. */
  upsert(chat: Chat): void {
    this.put(chat);
    if (chat.archived !== this.archived || (this.tag !== null && !(chat.tags ?? []).includes(this.tag))) {
      this.unlist(chat.id);
      return;
    }
    const rest = this.items.filter((c) => c.id !== chat.id);
    this.listed = [chat, ...rest].sort(newestFirst).map((c) => c.id);
  }

  /** Keep a chat's record (e.g. the open chat's, from the server) without listing it. */
  put(chat: Chat): void {
    if (this.records.get(chat.id) === chat) return;
    this.records = new Map(this.records).set(chat.id, chat);
  }

  /** A title pushed by the server (`title` on /api/events): shown at once, then the first
   * page is read again, which also supersedes any list read still on its way from before
   * the title was stored (refreshTop keeps only the latest read). */
  applyTitle(chatId: string, title: string): void {
    const chat = this.get(chatId);
    if (chat && chat.title !== title) this.put({ ...chat, title });
    void this.refreshTop();
  }

  get(id: string): Chat | undefined {
    return this.records.get(id);
  }

  async rename(chat: Chat, title: string): Promise<void> {
    const clean = title.trim();
    if (!clean || clean === chat.title) return;
    this.put({ ...chat, title: clean });
    this.upsert(await api.updateChat(chat.id, { title: clean }));
  }

  async setPinned(chat: Chat, pinned: boolean): Promise<void> {
    this.put({ ...chat, pinned });
    this.upsert(await api.updateChat(chat.id, { pinned }));
  }

  async setArchived(chat: Chat, archived: boolean): Promise<void> {
    this.unlist(chat.id);
    this.put(await api.updateChat(chat.id, { archived }));
  }

  /** Hide the chat now; really delete it when the undo window closes. */
  remove(chat: Chat, onDeleted?: () => void): void {
    this.unlist(chat.id);
    const timer = setTimeout(() => void this.commitDelete(chat.id).then(onDeleted), UNDO_MS);
    this.pendingDeletes = [...this.pendingDeletes, { chat, timer }];
  }

  undoDelete(chatId: string): void {
    const pending = this.pendingDeletes.find((p) => p.chat.id === chatId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pendingDeletes = this.pendingDeletes.filter((p) => p !== pending);
    this.upsert(this.get(chatId) ?? pending.chat); // the record may have changed meanwhile (a title)
  }

  async commitDelete(chatId: string): Promise<void> {
    const pending = this.pendingDeletes.find((p) => p.chat.id === chatId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pendingDeletes = this.pendingDeletes.filter((p) => p !== pending);
    try {
      await api.deleteChat(chatId);
    } catch {
      this.upsert(this.get(chatId) ?? pending.chat); // it is still there: show it again
    }
  }

  /** Deletes waiting for their undo window are sent when the page goes away. */
  flushOnUnload(): void {
    for (const pending of this.pendingDeletes) {
      clearTimeout(pending.timer);
      const token = document.cookie.match(/(?:^|;\s*)gust_csrf=([^;]*)/)?.[1];
      void fetch(`/api/chats/${encodeURIComponent(pending.chat.id)}`, {
        method: 'DELETE',
        credentials: 'same-origin',
        keepalive: true,
        headers: token ? { 'X-CSRF-Token': decodeURIComponent(token) } : {},
      });
    }
    this.pendingDeletes = [];
  }

  private setList(chats: Chat[]): void {
    const records = new Map(this.records);
    for (const chat of chats) records.set(chat.id, chat);
    this.records = records;
    this.listed = chats.map((c) => c.id);
  }

  private unlist(id: string): void {
    if (this.listed.includes(id)) this.listed = this.listed.filter((c) => c !== id);
  }

  private visible(chats: Chat[]): Chat[] {
    this.learnTags(chats);
    const hidden = new Set(this.pendingDeletes.map((p) => p.chat.id));
    return chats.filter((c) => !hidden.has(c.id));
  }
}

export const chatList = new ChatList();
