/** Export the chat as shown (its current branch) to Markdown or JSON files. */
import { t } from './i18n';
import type { Chat, Message } from './types';

export function chatToMarkdown(chat: Chat | null, messages: Message[]): string {
  const lines = [`# ${chat?.title ?? t.sidebar.newChat}`, ''];
  for (const message of messages) {
    const who = message.role === 'user' ? t.chat.you : t.chat.assistant;
    lines.push(`## ${who}`, '', message.content, '');
    if (message.sources?.length) {
      lines.push(`${t.chat.sources}:`, ...message.sources.map((s) => `${s.n}. [${s.title || s.url}](${s.url})`), '');
    }
  }
  return lines.join('\n');
}

export function chatToJson(chat: Chat | null, messages: Message[]): string {
  return JSON.stringify({ chat, messages }, null, 2);
}

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'chat';
}

export function download(filename: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function exportChat(chat: Chat | null, messages: Message[], format: 'markdown' | 'json'): void {
  const name = slug(chat?.title ?? 'chat');
  if (format === 'markdown') download(`${name}.md`, chatToMarkdown(chat, messages), 'text/markdown;charset=utf-8');
  else download(`${name}.json`, chatToJson(chat, messages), 'application/json');
}
