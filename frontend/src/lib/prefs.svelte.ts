/** Preferences kept in this browser: theme and default model. */

export type Theme = 'system' | 'light' | 'dark';

function stored(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // private mode: the preference lasts for this page only
  }
}

const initialTheme = stored('gust.theme');

export const prefs = $state({
  theme: (initialTheme === 'light' || initialTheme === 'dark' ? initialTheme : 'system') as Theme,
  defaultModel: stored('gust.model'),
});

export function applyTheme(): void {
  const root = document.documentElement;
  if (prefs.theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = prefs.theme;
}

export function setTheme(theme: Theme): void {
  prefs.theme = theme;
  store('gust.theme', theme === 'system' ? null : theme);
  applyTheme();
}

export function setDefaultModel(model: string | null): void {
  prefs.defaultModel = model;
  store('gust.model', model);
}
