/** The team's suggested prompts, shown on an empty chat. */
import { accountApi } from './accountApi';

export const suggestions = $state({ items: [] as string[] });

export async function loadSuggestions(): Promise<void> {
  try {
    suggestions.items = await accountApi.suggestions();
  } catch {
    suggestions.items = []; // an older server: no suggestions
  }
}
