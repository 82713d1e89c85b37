import { describe, expect, it } from 'vitest';
import { shortcutFor } from './shortcuts';

const key = (k: string, mods: Partial<Record<'ctrlKey' | 'metaKey' | 'shiftKey' | 'altKey', boolean>> = {}) => ({
  key: k, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, isComposing: false, defaultPrevented: false, ...mods,
});
const idle = { typing: false, dialogOpen: false };

describe('shortcutFor', () => {
  it('maps Esc, Ctrl/Cmd+Shift+O and ?', () => {
    expect(shortcutFor(key('Escape'), idle)).toBe('stop');
    expect(shortcutFor(key('O', { ctrlKey: true, shiftKey: true }), idle)).toBe('new-chat');
    expect(shortcutFor(key('o', { metaKey: true, shiftKey: true }), { typing: true, dialogOpen: false })).toBe('new-chat');
    expect(shortcutFor(key('?', { shiftKey: true }), idle)).toBe('help');
  });

  it('leaves typing, dialogs and other keys alone', () => {
    expect(shortcutFor(key('?'), { typing: true, dialogOpen: false })).toBeNull();
    expect(shortcutFor(key('?'), { typing: false, dialogOpen: true })).toBeNull();
    expect(shortcutFor(key('Escape'), { typing: false, dialogOpen: true })).toBeNull();
    expect(shortcutFor(key("o", { ctrlKey: true }), idle)).toBeNull();
    expect(shortcutFor({ ...key('Escape'), isComposing: true }, idle)).toBeNull();
  });
});
