/** App-wide keyboard shortcuts: which action a key press asks for, if any. */

export type ShortcutAction = 'stop' | 'new-chat' | 'help' | null;

/** True when the key goes to a text field (then `?` is just a character). */
export function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  if (!element || typeof element.closest !== 'function') return false;
  if (element.isContentEditable) return true;
  const field = element.closest('input, textarea, select');
  if (!field) return false;
  const type = (field as HTMLInputElement).type;
  return !(field.tagName === 'INPUT' && ['checkbox', 'radio', 'button', 'submit', 'reset'].includes(type));
}

export function shortcutFor(
  event: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'shiftKey' | 'altKey' | 'isComposing' | 'defaultPrevented'>,
  state: { typing: boolean; dialogOpen: boolean },
): ShortcutAction {
  if (event.isComposing || event.defaultPrevented) return null;
  const mod = event.ctrlKey || event.metaKey;
  // Esc closes an open dialog first (the browser does that); otherwise it stops the answer.
  if (event.key === 'Escape' && !mod && !state.dialogOpen) return 'stop';
  if (mod && event.shiftKey && !event.altKey && event.key.toLowerCase() === 'o') return 'new-chat';
  if (event.key === '?' && !mod && !event.altKey && !state.typing && !state.dialogOpen) return 'help';
  return null;
}
