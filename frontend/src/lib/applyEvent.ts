/**
 * What one stream event does to the open conversation, as a pure function: no I/O, no
 * timers, no store. The stream controller (streamController.ts) feeds it the events of
 * POST /chat/stream or GET /api/chats/{id}/events (deduplicated, deltas batched per frame);
 * the conversation store keeps the result and does the side effects (navigation, reloads).
 * The event shapes are generated from the backend's OpenAPI document (events.gen.ts).
 */
import type { StreamEvent } from './events.gen';
import { sourceList } from './sources';
import type { Message, MessageError, Source, ToolCallRecord, Usage } from './types';

export type { StreamEvent } from './events.gen';

/** The answer being streamed: shown in place of its message until `done`. */
export interface LiveAnswer {
  messageId: string | null;
  content: string;
  reasoning: string;
  stage: string | null;
  sources: Source[] | null;
  usage: Usage | null;
  error: MessageError | null;
  /** The tools called so far, in order (results fill in as they come). */
  toolCalls: ToolCallRecord[];
}

export interface AnswerState {
  /** The chat the answer belongs to: null for a new chat until its `start`. */
  chatId: string | null;
  /** The branch shown; the live answer's message is in it (a local placeholder at first). */
  messages: Message[];
  live: LiveAnswer;
}

export function emptyLive(messageId: string | null = null, content = '', reasoning = ''): LiveAnswer {
  return { messageId, content, reasoning, stage: null, sources: null, usage: null, error: null, toolCalls: [] };
}

/** The state after `event`; the same object when the event changes nothing. */
export function applyEvent(state: AnswerState, event: StreamEvent): AnswerState {
  const live = state.live;
  switch (event.type) {
    case 'start': {
      // The stored ids replace the local placeholders. A replay starts from the beginning:
      // what a checkpoint had shown goes (a continued answer starts from the text it continues).
      const messages = state.messages.map((m) => {
        if (m.id === live.messageId || m.id === event.message_id) {
          return { ...m, id: event.message_id, chat_id: event.chat_id, model: event.model, parent_id: event.parent_id };
        }
        if (m.role === 'user' && m.id.startsWith('local-') && event.user_message_id) {
          return { ...m, id: event.user_message_id, chat_id: event.chat_id };
        }
        return m;
      });
      return {
        chatId: state.chatId ?? event.chat_id,
        messages,
        live: { ...live, messageId: event.message_id, content: event.continues ?? '', reasoning: '', toolCalls: [] },
      };
    }
    case 'delta':
      return event.delta ? { ...state, live: { ...live, content: live.content + event.delta } } : state;
    case 'reasoning':
      return event.delta ? { ...state, live: { ...live, reasoning: live.reasoning + event.delta } } : state;
    case 'resync':
      // The server's authoritative text (the events before were lost): it replaces what is shown.
      return { ...state, live: { ...live, content: event.content, reasoning: event.reasoning ?? '' } };
    case 'status':
      return { ...state, live: { ...live, stage: event.done ? null : event.detail || event.stage } };
    case 'sources':
      return { ...state, live: { ...live, sources: sourceList(event.sources) } };
    case 'tool_call': {
      const call: ToolCallRecord = {
        call_id: event.call_id, name: event.name, arguments: event.arguments, ok: null, content: null, elapsed_ms: null,
      };
      return { ...state, live: { ...live, toolCalls: [...live.toolCalls, call] } };
    }
    case 'tool_result': {
      const toolCalls = live.toolCalls.map((c) =>
        c.call_id === event.call_id ? { ...c, ok: event.ok, content: event.content, elapsed_ms: event.elapsed_ms } : c,
      );
      return { ...state, live: { ...live, toolCalls } };
    }
    case 'usage':
      return {
        ...state,
        live: { ...live, usage: { prompt_tokens: event.prompt_tokens, completion_tokens: event.completion_tokens } },
      };
    case 'error':
      return { ...state, live: { ...live, error: { code: event.code, message: event.message, retryable: event.retryable } } };
    case 'done': {
      // The live answer becomes the message; the store's copy comes with the next reload.
      const messages = state.messages.map((m) =>
        m.id === event.message_id || m.id === live.messageId
          ? {
              ...m, id: event.message_id, content: live.content, reasoning: live.reasoning || null,
              status: event.status, usage: event.usage ?? live.usage, sources: live.sources ?? m.sources,
              error: live.error, finish_reason: event.finish_reason,
              tool_calls: live.toolCalls.length ? live.toolCalls : m.tool_calls,
            }
          : m,
      );
      return { ...state, messages, live: emptyLive() };
    }
    case 'ping':
      return state;
    default:
      // A type this build does not know (a newer server): nothing to show for it.
      return state;
  }
}

/** Consecutive deltas of one kind as one event (the same result, one new string per frame). */
export function coalesce(events: StreamEvent[]): StreamEvent[] {
  const out: StreamEvent[] = [];
  for (const event of events) {
    const last = out.at(-1);
    if ((event.type === 'delta' || event.type === 'reasoning') && (last?.type === 'delta' || last?.type === 'reasoning')
      && last.type === event.type) {
      out[out.length - 1] = { type: event.type, delta: last.delta + event.delta };
    } else {
      out.push(event);
    }
  }
  return out;
}
