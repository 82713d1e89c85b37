/**
 * A message being sent, before the server knows it: the branch shown with local
 * placeholders (the user's message and an empty answer, replaced by their stored ids at the
 * stream's `start`), and the body of POST /chat/stream. Pure, apart from the id counter.
 */
import type { Message } from './types';

export interface SendOptions {
  /** Set for an edit: branch from this message (null: a new first message) instead of the end. */
  parentId?: string | null;
  model?: string | null;
}

export interface SendContext {
  chatId: string | null;
  /** The conversation's model (options.model wins). */
  model: string | null;
  /** For a new chat only: its agent and system prompt. */
  agentId: string | null;
  systemPrompt: string | null;
}

let localIds = 0;
export function localId(kind: string): string {
  return `local-${kind}-${++localIds}`;
}

export function outgoing(
  shown: Message[], text: string, options: SendOptions, context: SendContext, now = new Date().toISOString(),
): { messages: Message[]; answerId: string; body: Record<string, unknown> } {
  const branching = options.parentId !== undefined;
  const parentId = branching ? options.parentId : (shown.at(-1)?.id ?? null);
  const base = branching ? shown.slice(0, shown.findIndex((m) => m.id === parentId) + 1) : shown;
  const model = options.model ?? context.model;
  const user: Message = {
    id: localId('user'), chat_id: context.chatId ?? '', parent_id: parentId ?? null, role: 'user', content: text,
    reasoning: null, status: 'complete', model: null, usage: null, sources: null, error: null, created_at: now,
  };
  const answer: Message = {
    ...user, id: localId('answer'), parent_id: user.id, role: 'assistant', content: '', status: 'streaming', model,
  };
  const body: Record<string, unknown> = { message: text };
  if (context.chatId) body.chat_id = context.chatId;
  else {
    if (context.agentId) body.agent_id = context.agentId;
    if (context.systemPrompt) body.system_prompt = context.systemPrompt;
  }
  // An edit of the first message sends `parent_id: null` explicitly: a new root.
  if (parentId || branching) body.parent_id = parentId ?? null;
  if (model) body.model = model;
  return { messages: [...base, user, answer], answerId: answer.id, body };
}
