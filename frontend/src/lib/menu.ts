/** Keyboard behaviour shared by the small pop-up menus: arrows move, Escape closes. */
export function menuKeydown(event: KeyboardEvent, close: () => void): void {
  const menu = event.currentTarget as HTMLElement;
  if (event.key === 'Escape') {
    event.preventDefault();
    close();
    return;
  }
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp' && event.key !== 'Home' && event.key !== 'End') return;
  const items = Array.from(menu.querySelectorAll<HTMLButtonElement>('button:not([disabled])'));
  if (items.length === 0) return;
  event.preventDefault();
  const current = items.indexOf(document.activeElement as HTMLButtonElement);
  let next = 0;
  if (event.key === 'End') next = items.length - 1;
  else if (event.key === 'ArrowDown') next = (current + 1) % items.length;
  else if (event.key === 'ArrowUp') next = (current - 1 + items.length) % items.length;
  items[next].focus();
}

/** Svelte action: focus the first item of a menu when it opens. */
export function focusFirst(node: HTMLElement): void {
  node.querySelector<HTMLButtonElement>('button')?.focus();
}
