import { describe, expect, it } from 'vitest';
import { plainSnippet } from './snippet';

describe('plainSnippet', () => {
  it.each([
    ['## Setup\nRun **<mark>pip</mark> install** now', 'Setup Run <mark>pip</mark> install now'],
    ['see [the <mark>docs</mark>](https://x.example/docs "t") and ![img](a.png)', 'see the <mark>docs</mark> and img'],
    ['```python\nprint("<mark>hi</mark>")\n```', 'print("<mark>hi</mark>")'],
    ['- first\n- second *item* and _this_\n1. third', 'first second item and this third'],
    ['> a `quoted` ~~old~~ line', 'a quoted old line'],
    ['| a | b |\n|---|---|\n| 1 | 2 |', 'a b 1 2'],
    ['cost is 5 * 3 = 15 and snake_case_name stays', 'cost is 5 * 3 = 15 and snake_case_name stays'],
    ['$$x^2$$ maths', 'x^2 maths'],
  ])('%j', (raw, plain) => {
    expect(plainSnippet(raw)).toBe(plain);
  });
});
