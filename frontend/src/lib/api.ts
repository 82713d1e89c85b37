/**
 * The JSON API: same-origin cookies, the CSRF header, and one transparent token refresh.
 *
 * The session lives in the httpOnly `gust_access` cookie. Unsafe requests echo the
 * JS-readable `gust_csrf` cookie in `X-CSRF-Token` whenever it exists. An access token
 * expires after minutes: on a 401 (`token_expired`, or `unauthorized` once the browser
 * dropped the expired cookie) we call /api/auth/refresh once (shared by every request
 * waiting on it, and by the browser's other tabs: see refreshSession) and retry.
 */
import { HttpError } from './sse';
import type { Chat, ChatDetail, ChatPage, Message, ModelList, SearchResult, User } from './types';

export { HttpError };

/** The object a route points at is not there for us (unknown, deleted, someone else's): never retry. */
export function isGone(error: unknown): boolean {
  return error instanceof HttpError && (error.status === 403 || error.status === 404 || error.status === 410);
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// A 401 from these means what it says (wrong password, no session): never refresh for them.
const NO_REFRESH = new Set(['/api/auth/login', '/api/auth/register', '/api/auth/refresh', '/api/auth/logout']);

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

let refreshing: Promise<boolean> | null = null;
const unauthorizedListeners = new Set<() => void>();

/** Called when the session is gone for good (refresh failed): show the sign-in screen. */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

// Held across this browser's tabs while one of them renews the session (Web Locks API).
const REFRESH_LOCK = 'gust-session-refresh';

/**
 * Renew the session once for every request of this tab waiting on it, and never in two
 * tabs at once: a refresh token is rotated on use, and the server treats a second use of
 * the old one as theft and ends the session everywhere. Tabs share their cookies, so a
 * tab that had to wait for another tab's refresh first checks whether the renewed cookies
 * already work. Without the Web Locks API (plain HTTP on a non-local address is not a
 * secure context) the refresh runs unguarded, as before.
 */
function refreshSession(): Promise<boolean> {
  refreshing ??= oneTabAtATime(renew)
    .then((ok) => {
      if (ok) renewals += 1;
      return ok;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

// Counts this tab's successful renewals: a request sent before one of them completed and
// answered 401 after it only needs sending again, not a renewal of its own (which would
// rotate the fresh refresh token once more for nothing).
let renewals = 0;

async function oneTabAtATime(task: (waited: boolean) => Promise<boolean>): Promise<boolean> {
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
  if (!locks) return task(false);
  const now = await locks.request(REFRESH_LOCK, { ifAvailable: true }, (lock) => (lock ? task(false) : null));
  return now ?? locks.request(REFRESH_LOCK, () => task(true));
}

async function renew(waited: boolean): Promise<boolean> {
  if (waited) {
    const probe = await fetch('/api/auth/me', { credentials: 'same-origin' }).catch(() => null);
    if (probe?.ok) return true; // another tab renewed the shared cookies meanwhile
  }
  return fetch('/api/auth/refresh', {
    method: 'POST',
    credentials: 'same-origin',
    headers: csrfHeaders('POST'),
  })
    .then((response) => response.ok)
    .catch(() => false);
}

function csrfHeaders(method: string): Record<string, string> {
  const token = UNSAFE.has(method.toUpperCase()) ? readCookie('gust_csrf') : null;
  return token ? { 'X-CSRF-Token': token } : {};
}

async function errorCode(response: Response): Promise<string | null> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: string } };
    return body.error?.code ?? null;
  } catch {
    return null;
  }
}

/**
 * fetch() with the session conventions: same-origin credentials, CSRF header, and one
 * refresh-and-retry on an expired token. Used by JSON calls and by the SSE reader.
 */
export const apiFetch: typeof fetch = async (input, init = {}) => {
  const method = (init.method ?? 'GET').toUpperCase();
  const send = () =>
    fetch(input, {
      ...init,
      credentials: 'same-origin',
      headers: { ...(init.headers as Record<string, string> | undefined), ...csrfHeaders(method) },
    });
  const sentAfter = renewals;
  let response = await send();
  const path = String(input);
  if (response.status === 401 && !NO_REFRESH.has(path)) {
    // The access cookie lives exactly as long as its token, so an expired session usually
    // arrives as "no credentials" rather than `token_expired`: either way, refresh once.
    const code = await errorCode(response);
    const renewable = code === 'token_expired' || code === 'unauthorized';
    if (renewable && (renewals !== sentAfter || (await refreshSession()))) {
      response = await send();
    }
    if (response.status === 401) {
      for (const listener of unauthorizedListeners) listener();
    }
  }
  return response;
};

async function toError(response: Response): Promise<HttpError> {
  let body: unknown = null;
  let code = 'http_error';
  let message = `${response.status} ${response.statusText}`;
  try {
    body = await response.json();
    const error = (body as { error?: { code?: string; message?: string } }).error;
    if (error?.code) code = error.code;
    if (error?.message) message = error.message;
  } catch {
    // not JSON
  }
  return new HttpError(response.status, code, message, body);
}

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  let payload: string | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await apiFetch(path, { method, headers, body: payload, signal });
  if (!response.ok) throw await toError(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export interface Provider {
  id: string;
  name: string;
  url: string;
}

export interface SignInMethods {
  providers: Provider[];
  registration: 'open' | 'invite' | 'closed';
}

export interface ApiKey {
  id: string;
  name: string;
  created_at?: string;
  last_used_at?: string | null;
  prefix?: string;
}

export interface Agent {
  id: string;
  name: string;
  description: string;
  model: string | null;
  system_prompt: string;
}

export const api = {
  me: () => request<User>('GET', '/api/auth/me'),
  login: (email: string, password: string) =>
    request<{ user: User }>('POST', '/api/auth/login', { email, password }),
  register: (email: string, password: string, display_name?: string, invite?: string | null) =>
    request<User>('POST', '/api/auth/register', {
      email,
      password,
      ...(display_name ? { display_name } : {}),
      ...(invite ? { invite } : {}),
    }),
  logout: () => request<void>('POST', '/api/auth/logout'),
  signInMethods: async (): Promise<SignInMethods> => {
    const body = await request<{
      items?: Array<{ id: string; name?: string; start_url?: string }>;
      registration?: SignInMethods['registration'];
    }>('GET', '/api/auth/providers');
    return {
      providers: (body.items ?? []).map((p) => ({
        id: p.id,
        name: p.name ?? p.id,
        url: p.start_url ?? `/api/auth/oauth/${encodeURIComponent(p.id)}/start`,
      })),
      registration: body.registration ?? 'open',
    };
  },

  listChats: (params: { limit?: number; cursor?: string | null; archived?: boolean; tag?: string | null }) =>
    request<ChatPage>('GET', `/api/chats${query(params)}`),
  createChat: (body: { title?: string; model?: string | null; system_prompt?: string | null }) =>
    request<Chat>('POST', '/api/chats', body),
  getChat: (id: string, leaf?: string | null, signal?: AbortSignal) =>
    request<ChatDetail>('GET', `/api/chats/${encodeURIComponent(id)}${query({ leaf })}`, undefined, signal),
  updateChat: (id: string, changes: Partial<Pick<Chat, 'title' | 'pinned' | 'archived' | 'system_prompt' | 'model'>>) =>
    request<Chat>('PATCH', `/api/chats/${encodeURIComponent(id)}`, changes),
  deleteChat: (id: string) => request<void>('DELETE', `/api/chats/${encodeURIComponent(id)}`),
  stop: (id: string) => request<unknown>('POST', `/api/chats/${encodeURIComponent(id)}/stop`),
  sendMessage: (body: Record<string, unknown>) => request<Message>('POST', '/chat/message', body),

  models: () => request<ModelList>('GET', '/api/models'),
  search: (q: string, signal?: AbortSignal) =>
    request<SearchResult>('GET', `/api/search${query({ q })}`, undefined, signal),

  apiKeys: async (): Promise<ApiKey[]> => (await request<{ items: ApiKey[] }>('GET', '/api/auth/api-keys')).items,
  createApiKey: (name: string) => request<ApiKey & { key: string }>('POST', '/api/auth/api-keys', { name }),
  deleteApiKey: (id: string) => request<void>('DELETE', `/api/auth/api-keys/${encodeURIComponent(id)}`),

  agents: async (): Promise<Agent[]> => (await request<{ items: Agent[] }>('GET', '/api/agents')).items,
  createAgent: (agent: Pick<Agent, 'name' | 'description' | 'model' | 'system_prompt'>) =>
    request<Agent>('POST', '/api/agents', agent),
  deleteAgent: (id: string) => request<void>('DELETE', `/api/agents/${encodeURIComponent(id)}`),

  adminUsers: async (): Promise<User[]> => (await request<{ items: User[] }>('GET', '/api/admin/users')).items,
  createInvite: (role: 'admin' | 'user', email?: string) =>
    request<{ url: string; token: string }>('POST', '/api/admin/invites', { role, ...(email ? { email } : {}) }),
  updateUser: (id: string, changes: { role?: 'admin' | 'user'; disabled?: boolean }) =>
    request<User>('PATCH', `/api/admin/users/${encodeURIComponent(id)}`, changes),
};
