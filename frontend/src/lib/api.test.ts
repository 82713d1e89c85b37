// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { apiFetch, HttpError, onUnauthorized, request } from './api';

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function install(handler: (seen: Seen, index: number) => Response | Promise<Response>): Seen[] {
  const calls: Seen[] = [];
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const seen = {
      url: String(input),
      method: init.method ?? 'GET',
      headers: { ...(init.headers as Record<string, string>) },
    };
    calls.push(seen);
    return handler(seen, calls.length - 1);
  });
  return calls;
}

const expired = () => json(401, { error: { code: 'token_expired', message: 'access token expired' } });

beforeEach(() => {
  document.cookie = 'gust_csrf=tok%2Fen; path=/';
});

afterEach(() => {
  vi.unstubAllGlobals();
  document.cookie = 'gust_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';
});

describe('apiFetch', () => {
  it('echoes the CSRF cookie on unsafe requests only', async () => {
    const calls = install(() => json(200, {}));
    await apiFetch('/api/chats', { method: 'POST' });
    await apiFetch('/api/chats');
    expect(calls[0].headers['X-CSRF-Token']).toBe('tok/en');
    expect(calls[1].headers['X-CSRF-Token']).toBeUndefined();
  });

  it('refreshes once on token_expired and retries', async () => {
    let refreshed = false;
    const calls = install((seen) => {
      if (seen.url === '/api/auth/refresh') {
        refreshed = true;
        return json(200, {});
      }
      return refreshed ? json(200, { ok: true }) : expired();
    });
    expect(await request('GET', '/api/chats')).toEqual({ ok: true });
    expect(calls.map((c) => c.url)).toEqual(['/api/chats', '/api/auth/refresh', '/api/chats']);
    expect(calls[1].method).toBe('POST');
  });

  it('renews the session on page load (GET /api/auth/me) too', async () => {
    let refreshed = false;
    const calls = install((seen) => {
      if (seen.url === '/api/auth/refresh') {
        refreshed = true;
        return json(200, {});
      }
      return refreshed ? json(200, { id: 'u1' }) : json(401, { error: { code: 'unauthorized', message: 'no' } });
    });
    expect(await request('GET', '/api/auth/me')).toEqual({ id: 'u1' });
    expect(calls.map((c) => c.url)).toEqual(['/api/auth/me', '/api/auth/refresh', '/api/auth/me']);
  });

  it('shares one refresh between concurrent requests', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let refreshed = false;
    const calls = install(async (seen) => {
      if (seen.url === '/api/auth/refresh') {
        await gate;
        refreshed = true;
        return json(200, {});
      }
      return refreshed ? json(200, { url: seen.url }) : expired();
    });
    const both = Promise.all([request('GET', '/api/chats'), request('GET', '/api/models')]);
    await vi.waitFor(() => expect(calls.filter((c) => c.url === '/api/auth/refresh')).toHaveLength(1));
    release();
    expect(await both).toEqual([{ url: '/api/chats' }, { url: '/api/models' }]);
    expect(calls.filter((c) => c.url === '/api/auth/refresh')).toHaveLength(1);
  });

  it('does not renew again for a request that was sent before a renewal completed', async () => {
    let refreshed = false;
    let releaseLate: () => void = () => {};
    const late = new Promise<void>((resolve) => {
      releaseLate = resolve;
    });
    const calls = install(async (seen, index) => {
      if (seen.url === '/api/auth/refresh') {
        refreshed = true;
        return json(200, { ok: true });
      }
      if (seen.url === '/api/late' && index === 1) {
        await late; // sent with the old cookie; its 401 arrives after the renewal
        return expired();
      }
      return refreshed ? json(200, { url: seen.url }) : expired();
    });
    const first = apiFetch('/api/first');
    const second = apiFetch('/api/late');
    expect((await first).status).toBe(200);
    releaseLate();
    expect((await second).status).toBe(200);
    expect(calls.filter((c) => c.url === '/api/auth/refresh')).toHaveLength(1);
  });

  it('signs out when the refresh fails, and surfaces the 401', async () => {
    install((seen) => (seen.url === '/api/auth/refresh' ? json(401, { error: { code: 'invalid_token', message: 'x' } }) : expired()));
    const signedOut = vi.fn();
    const stop = onUnauthorized(signedOut);
    const error = await request('GET', '/api/chats').catch((e: unknown) => e);
    stop();
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).code).toBe('token_expired');
    expect(signedOut).toHaveBeenCalledTimes(1);
  });

  it('refreshes when the expired cookie is already gone (plain unauthorized)', async () => {
    let refreshed = false;
    const calls = install((seen) => {
      if (seen.url === '/api/auth/refresh') {
        refreshed = true;
        return json(200, {});
      }
      return refreshed ? json(200, { ok: true }) : json(401, { error: { code: 'unauthorized', message: 'no' } });
    });
    expect(await request('GET', '/api/chats')).toEqual({ ok: true });
    expect(calls.map((c) => c.url)).toEqual(['/api/chats', '/api/auth/refresh', '/api/chats']);
  });

  it('never refreshes for the auth endpoints themselves (a wrong password is just a 401)', async () => {
    const calls = install(() => json(401, { error: { code: 'invalid_credentials', message: 'no' } }));
    const signedOut = vi.fn();
    const stop = onUnauthorized(signedOut);
    await request('POST', '/api/auth/login', {}).catch(() => undefined);
    stop();
    expect(calls.map((c) => c.url)).toEqual(['/api/auth/login']);
    expect(signedOut).not.toHaveBeenCalled();
  });
});
