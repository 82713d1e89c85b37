import { describe, expect, it } from 'vitest';
import { backoffDelay, isNetworkFailure } from './backoff';
import { HttpError } from './sse';

describe('backoffDelay', () => {
  it('doubles from the first delay up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n))).toEqual([1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    expect(backoffDelay(-1)).toBe(1000);
    expect(backoffDelay(3, 500, 3000)).toBe(3000);
  });
});

describe('isNetworkFailure', () => {
  it('is a fetch that never reached the server, not an HTTP answer', () => {
    expect(isNetworkFailure(new TypeError('Failed to fetch'))).toBe(true);
    expect(isNetworkFailure(new HttpError(502, 'bad_gateway', 'Bad gateway', null))).toBe(false);
    expect(isNetworkFailure(new Error('other'))).toBe(false);
  });
});
