/** API calls of single-message actions (delete, feedback, continue, regenerate) and the prompt library. */
import { request } from './api';
import type { Chat, Feedback, Message } from './types';

export interface Prompt {
  id: string;
  name: string;
  command: string;
  body: string;
  team_id: string | null;
  version: number;
  variables: string[];
  created_at: string;
  updated_at: string;
}

const enc = encodeURIComponent;
const messagePath = (chatId: string, messageId: string) => `/api/chats/${enc(chatId)}/messages/${enc(messageId)}`;

export const extrasApi = {
  deleteMessage: (chatId: string, messageId: string) => request<void>('DELETE', messagePath(chatId, messageId)),
  setFeedback: (chatId: string, messageId: string, rating: 1 | -1 | 0, comment?: string | null) =>
    request<Message>('PUT', `${messagePath(chatId, messageId)}/feedback`, comment ? { rating, comment } : { rating }),
  // Both answer `{message_id}` (and `generation_id`, its deprecated alias: not read).
  continueAnswer: (chatId: string, messageId: string) =>
    request<{ message_id: string }>('POST', `${messagePath(chatId, messageId)}/continue`),
  regenerate: (chatId: string, messageId: string, body: { model?: string }) =>
    request<{ message_id: string }>('POST', `${messagePath(chatId, messageId)}/regenerate`, body),
  setTags: (chatId: string, tags: string[]) => request<Chat>('PATCH', `/api/chats/${enc(chatId)}`, { tags }),
  prompts: async (): Promise<Prompt[]> => (await request<{ items: Prompt[] }>('GET', '/api/prompts')).items,
  createPrompt: (body: { name: string; command: string; body: string; team?: boolean }) =>
    request<Prompt>('POST', '/api/prompts', body),
  updatePrompt: (id: string, changes: Partial<Pick<Prompt, 'name' | 'command' | 'body'>>) =>
    request<Prompt>('PATCH', `/api/prompts/${enc(id)}`, changes),
  deletePrompt: (id: string) => request<void>('DELETE', `/api/prompts/${enc(id)}`),
};

/** A prompt's body with its `{{variables}}` filled in (unknown ones are left as written). */
export function fillPrompt(body: string, values: Record<string, string>): string {
  return body.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,39})\s*\}\}/g, (whole, name: string) =>
    name in values ? values[name] : whole,
  );
}

/** Strings of these features (kept apart from i18n.ts, which other features edit too). */
export const tx = {
  continue: 'Continue',
  continueHint: 'Continue this answer where it stopped',
  deleteMessage: 'Delete',
  deleteConfirm: 'Delete this message and everything below it?',
  deleteDone: 'Message deleted.',
  messageActions: 'More actions',
  goodAnswer: 'Good answer',
  badAnswer: 'Bad answer',
  addComment: 'Add a comment',
  commentLabel: 'Comment on this answer',
  commentSave: 'Save comment',
  feedbackThanks: 'Thanks for the feedback.',
  tags: 'Tags',
  editTags: 'Edit tags',
  tagsOf: (title: string) => `Tags of ${title}`,
  addTag: 'Add a tag',
  removeTag: (tag: string) => `Remove tag ${tag}`,
  tagFilter: 'Filter by tag',
  allTags: 'All chats',
  done: 'Done',
  prompts: 'Prompts',
  promptPicker: 'Saved prompts',
  noPrompts: 'No saved prompt matches.',
  fillPrompt: (name: string) => `Fill in ${name}`,
  usePrompt: 'Use prompt',
  promptsHint: 'Type / at the start of a message to use one. Write {{name}} in a prompt for a value to fill in.',
  noPromptsYet: 'No saved prompts yet.',
  newPrompt: 'New prompt',
  promptName: 'Name',
  promptCommand: 'Command (letters, digits and dashes)',
  promptBody: 'Prompt',
  promptTeam: 'Share with my team',
  promptTeamBadge: 'team',
  promptSaved: 'Prompt saved.',
  edit: 'Edit',
  editPrompt: (command: string) => `Edit /${command}`,
  deletePrompt: (command: string) => `Delete /${command}`,
  feedbackTitle: 'Ratings of answers per model',
  noFeedback: 'No answer has been rated yet.',
  model: 'Model',
};
