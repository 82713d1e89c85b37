/** Shapes of the API's JSON (see /api/openapi.json). */

export interface User {
  id: string;
  email: string;
  display_name: string;
  role: 'admin' | 'user';
  team_id: string;
  disabled: boolean;
  created_at: string;
  // Only on the signed-in user's own profile (/api/auth/me).
  default_model?: string | null;
  default_system_prompt?: string | null;
}

export interface Chat {
  id: string;
  title: string;
  model: string | null;
  system_prompt: string | null;
  agent_id: string | null;
  pinned: boolean;
  archived: boolean;
  tags?: string[];
  created_at: string;
  updated_at: string;
}

export interface ChatPage {
  items: Chat[];
  next_cursor: string | null;
}

export type MessageStatus = 'complete' | 'streaming' | 'stopped' | 'error' | 'interrupted';

export interface Source {
  n: number;
  url: string;
  title: string;
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

export interface MessageError {
  code?: string;
  message?: string;
  retryable?: boolean;
}

export interface Feedback {
  rating: 1 | -1;
  comment: string | null;
}

/** One tool call of an answer (the `tool_call` event, then its `tool_result`). */
export interface ToolCallRecord {
  call_id: string;
  name: string;
  arguments: string;
  /** null while the call runs */
  ok: boolean | null;
  content: string | null;
  elapsed_ms: number | null;
}

export interface Message {
  id: string;
  chat_id: string;
  parent_id: string | null;
  role: 'user' | 'assistant' | 'system';
  content: string;
  reasoning: string | null;
  status: MessageStatus;
  model: string | null;
  usage: Usage | null;
  sources: Source[] | null;
  error: MessageError | null;
  /** The tools the answer called, in order (a card UI comes later). */
  tool_calls?: ToolCallRecord[] | null;
  /** Why the model stopped: 'length' means the answer was cut at the length limit. */
  finish_reason?: string | null;
  feedback?: Feedback | null;
  created_at: string;
  sibling_ids?: string[];
}

export interface ChatDetail extends Chat {
  messages: Message[];
}

export interface Model {
  id: string;
  name: string;
  provider?: string;
  features?: string[];
}

export interface ModelList {
  items: Model[];
  default: string | null;
}

export interface SearchHit {
  chat_id: string;
  chat_title: string;
  message_id: string | null;
  role: string | null;
  snippet: string;
  created_at: string;
}

export interface SearchResult {
  hits: SearchHit[];
  total_estimate: number;
  took_ms: number;
}

// The stream events (and the user notifications) are generated from the backend's OpenAPI
// document: see events.gen.ts.
