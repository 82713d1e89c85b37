// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { chatList } from './chats.svelte';
import { conversation } from './conversation.svelte';
import type { Chat } from './types';

function chat(id: string, fields: Partial<Chat> = {}): Chat {
  return {
    id, title: 'Untitled', model: 'm1', system_prompt: null, agent_id: null, pinned: false, archived: false, tags: [],
    created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', ...fields,
  };
}

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { headers: { 'Content-Type': 'application/json' } });
}

/** The server's chats, as the stubbed API answers them. */
let server: Map<string, Chat>;

beforeEach(() => {
  server = new Map([['c1', chat('c1')], ['c2', chat('c2', { archived: true, title: 'Old one' })]]);
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://gust.test');
    const method = init.method ?? 'GET';
    if (url.pathname === '/api/chats' && method === 'GET') {
      const archived = url.searchParams.get('archived') === 'true';
      return json({ items: [...server.values()].filter((c) => c.archived === archived), next_cursor: null });
    }
    const id = decodeURIComponent(url.pathname.split('/')[3] ?? '');
    const stored = server.get(id);
    if (!stored) return new Response('{}', { status: 404 });
    if (method === 'PATCH') {
      const saved = { ...stored, ...(JSON.parse(String(init.body)) as Partial<Chat>), updated_at: '2026-01-02T00:00:00Z' };
      server.set(id, saved);
      return json(saved);
    }
    return json({ ...stored, messages: [] });
  });
});

afterEach(() => {
  conversation.startNew();
  vi.unstubAllGlobals();
});

describe('one record per chat', () => {
  it('a pushed title shows at once in the sidebar and in the open chat', async () => {
    await chatList.reload();
    await conversation.open('c1');
    server.set('c1', { ...server.get('c1')!, title: 'Greetings' }); // stored before it is pushed
    chatList.applyTitle('c1', 'Greetings');
    expect(conversation.chat?.title).toBe('Greetings');
    expect(chatList.items.find((c) => c.id === 'c1')?.title).toBe('Greetings');
  });

  it('a pushed title reaches the open chat when the list does not show it (archived)', async () => {
    await chatList.reload();
    await conversation.open('c2');
    expect(chatList.items.map((c) => c.id)).toEqual(['c1']);
    expect(conversation.chat?.title).toBe('Old one');
    chatList.applyTitle('c2', 'Renamed by the model');
    expect(conversation.chat?.title).toBe('Renamed by the model');
  });

  it('a rename in the sidebar is the open chat\'s title, and a model chosen in the chat is the list\'s', async () => {
    await chatList.reload();
    await conversation.open('c1');
    await chatList.rename(chatList.get('c1')!, 'My plans');
    expect(conversation.chat?.title).toBe('My plans');
    await conversation.setModel('m2');
    expect(chatList.items.find((c) => c.id === 'c1')?.model).toBe('m2');
  });

  it('tags saved from the list show on the open chat', async () => {
    await chatList.reload();
    await conversation.open('c1');
    await chatList.setTags(chatList.get('c1')!, ['work']);
    expect(conversation.chat?.tags).toEqual(['work']);
  });
});
