/**
 * Sources as the message components render them, whatever the server stored: data imported
 * before imports were checked may hold a missing or repeated `n`, a non-http URL or no list
 * at all. Rendering keys the list by position, so repeats can never break the page.
 */
import type { Source } from './types';

/**
 * The renderable sources: objects only, `url` a string, `title` text. Their own numbers are
 * kept when they are distinct positive integers (citations such as [2] refer to them);
 * otherwise they are numbered 1..k in order.
 */
export function sourceList(value: unknown): Source[] {
  if (!Array.isArray(value)) return [];
  const items = value.filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null);
  const numbers = items.map((item) => item.n);
  const usable =
    numbers.every((n) => typeof n === 'number' && Number.isInteger(n) && n > 0) && new Set(numbers).size === numbers.length;
  return items.map((item, i) => ({
    n: usable ? (item.n as number) : i + 1,
    url: typeof item.url === 'string' ? item.url : '',
    title: typeof item.title === 'string' ? item.title.slice(0, 300) : '',
  }));
}
