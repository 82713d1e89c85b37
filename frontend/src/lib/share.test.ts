import { describe, expect, it } from 'vitest';
import { asMessage, shareIdOf } from './share';

describe('share links', () => {
  it('finds the share id in /s/ paths only', () => {
    expect(shareIdOf('/s/abc_DEF-123')).toBe('abc_DEF-123');
    expect(shareIdOf('/s/abc/')).toBe('abc');
    expect(shareIdOf('/c/abc')).toBeNull();
    expect(shareIdOf('/s/')).toBeNull();
    expect(shareIdOf('/s/a/b')).toBeNull();
  });

  it('renders shared messages with the message components', () => {
    const message = asMessage({
      id: 'm1',
      parent_id: null,
      role: 'assistant',
      content: 'hi',
      reasoning: null,
      status: 'complete',
      model: 'x',
      sources: null,
      created_at: null,
    });
    expect(message).toMatchObject({ id: 'm1', content: 'hi', chat_id: '', usage: null, error: null, created_at: '' });
  });
});
