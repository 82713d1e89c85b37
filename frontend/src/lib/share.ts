/**
 * Share links: a read-only snapshot of a chat's branch at `/s/{share_id}`.
 *
 * The owner creates (or replaces), reads and revokes a chat's link through the JSON API;
 * anyone with the link reads the snapshot with a plain fetch, without a session.
 */
import { HttpError, request } from './api';
import type { Message, MessageStatus, Source } from './types';

export interface SharedMessage {
  id: string;
  parent_id: string | null;
  role: 'user' | 'assistant' | 'system';
  content: string;
  reasoning: string | null;
  status: MessageStatus;
  model: string | null;
  sources: Source[] | null;
  created_at: string | null;
}

export interface Share {
  id: string;
  url: string;
  title: string;
  model: string | null;
  created_at: string | null;
  messages: SharedMessage[];
}

const sharePath = (chatId: string) => `/api/chats/${encodeURIComponent(chatId)}/share`;

/** The chat's live link, or null when it is not shared. */
export async function currentShare(chatId: string): Promise<Share | null> {
  try {
    return await request<Share>('GET', sharePath(chatId));
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) return null;
    throw e;
  }
}

export const createShare = (chatId: string) => request<Share>('POST', sharePath(chatId));
export const revokeShare = (chatId: string) => request<void>('DELETE', sharePath(chatId));

/** The absolute address to hand out. */
export const shareLink = (share: Pick<Share, 'url'>) => new URL(share.url, location.origin).href;

/** The share id in a `/s/{share_id}` path, else null. */
export function shareIdOf(path: string): string | null {
  const match = /^\/s\/([^/]+)\/?$/.exec(path);
  return match ? decodeURIComponent(match[1]) : null;
}

/** A snapshot for anyone: null when the link is unknown or was revoked. */
export async function loadSharedSnapshot(shareId: string): Promise<Share | null> {
  const response = await fetch(`/api/shares/${encodeURIComponent(shareId)}`, {
    headers: { Accept: 'application/json' },
    credentials: 'omit',
  });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as Share;
}

/** A shared message in the shape the message components render. */
export function asMessage(message: SharedMessage): Message {
  return {
    ...message,
    chat_id: '',
    usage: null,
    error: null,
    created_at: message.created_at ?? '',
  };
}
