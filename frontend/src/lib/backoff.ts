/** Waits between attempts: doubling from `first` up to `max` (no jitter: few clients). */
export function backoffDelay(attempt: number, first = 1000, max = 15_000): number {
  return Math.min(max, first * 2 ** Math.max(0, attempt));
}

/** A failed fetch() that never reached the server (down, unreachable, connection refused). */
export function isNetworkFailure(error: unknown): boolean {
  return error instanceof TypeError;
}
