/** A tiny history router: `/` (a new chat) and `/c/{chat_id}` (optionally `?m=<message id>`). */

export const route = $state({ path: location.pathname, search: location.search });

export function navigate(url: string, options: { replace?: boolean } = {}): void {
  const target = new URL(url, location.origin);
  if (target.pathname + target.search === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, '', target.pathname + target.search);
  else history.pushState(null, '', target.pathname + target.search);
  route.path = target.pathname;
  route.search = target.search;
}

window.addEventListener('popstate', () => {
  route.path = location.pathname;
  route.search = location.search;
});

export function chatIdOf(path: string): string | null {
  const match = /^\/c\/([^/]+)\/?$/.exec(path);
  return match ? decodeURIComponent(match[1]) : null;
}

export function focusMessageOf(search: string): string | null {
  return new URLSearchParams(search).get('m');
}

export function chatUrl(chatId: string, messageId?: string | null): string {
  return `/c/${encodeURIComponent(chatId)}${messageId ? `?m=${encodeURIComponent(messageId)}` : ''}`;
}
