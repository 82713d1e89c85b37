/** Application-wide state: the signed-in user, models, connectivity, toasts, other tabs. */
import { api, HttpError } from './api';
import { backoffDelay } from './backoff';
import type { Model, User } from './types';

export const session = $state({
  user: null as User | null,
  checked: false,
});

export async function loadSession(): Promise<void> {
  try {
    session.user = await api.me();
  } catch (error) {
    if (!(error instanceof HttpError) || error.status !== 401) console.warn('session check failed', error);
    session.user = null;
  } finally {
    session.checked = true;
  }
}

export const models = $state({
  items: [] as Model[],
  default: null as string | null,
  available: false,
});

export async function loadModels(): Promise<void> {
  try {
    const list = await api.models();
    models.items = list.items;
    models.default = list.default;
    models.available = list.items.length > 0;
  } catch {
    // No /api/models on this server (yet): no picker, the server picks.
    models.available = false;
  }
}

export const network = $state({ online: navigator.onLine, justReconnected: false, serverDown: false });

const serverBackListeners = new Set<() => void>();
let watching = false;

/** Called when the server comes back after serverUnreachable(). */
export function onServerBack(listener: () => void): () => void {
  serverBackListeners.add(listener);
  return () => serverBackListeners.delete(listener);
}

/**
 * A request could not reach the server: say so, and ask /health with backoff (1 s doubling
 * to 15 s) until it answers; then the banner clears and listeners run (e.g. a Retry stays).
 */
export function serverUnreachable(): void {
  network.serverDown = true;
  if (watching) return;
  watching = true;
  void (async () => {
    for (let attempt = 0; ; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt)));
      const ok = await fetch('/health', { cache: 'no-store' }).then((r) => r.ok).catch(() => false);
      if (ok) break;
    }
    watching = false;
    network.serverDown = false;
    network.justReconnected = true;
    setTimeout(() => (network.justReconnected = false), 3000);
    for (const listener of serverBackListeners) listener();
  })();
}

window.addEventListener('offline', () => {
  network.online = false;
  network.justReconnected = false;
});
window.addEventListener('online', () => {
  network.online = true;
  network.justReconnected = true;
  setTimeout(() => (network.justReconnected = false), 3000);
});

export interface Toast {
  id: number;
  message: string;
  action?: { label: string; run: () => void };
  timeout: number;
}

let toastId = 0;
export const toasts = $state<{ items: Toast[] }>({ items: [] });

export function toast(message: string, options: { action?: Toast['action']; timeout?: number } = {}): number {
  const id = ++toastId;
  const timeout = options.timeout ?? 5000;
  toasts.items = [...toasts.items, { id, message, action: options.action, timeout }];
  setTimeout(() => dismissToast(id), timeout);
  return id;
}

export function dismissToast(id: number): void {
  toasts.items = toasts.items.filter((t) => t.id !== id);
}

/** Messages between tabs of this browser: a generation started, the chat list changed. */
export type TabMessage = { type: 'generation'; chat_id: string } | { type: 'chats-changed' };

const channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('gust');
const tabListeners = new Set<(message: TabMessage) => void>();

channel?.addEventListener('message', (event: MessageEvent<TabMessage>) => {
  for (const listener of tabListeners) listener(event.data);
});

export function tellOtherTabs(message: TabMessage): void {
  channel?.postMessage(message);
}

export function onTabMessage(listener: (message: TabMessage) => void): () => void {
  tabListeners.add(listener);
  return () => tabListeners.delete(listener);
}
