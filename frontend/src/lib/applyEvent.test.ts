import { describe, expect, it } from 'vitest';
import { applyEvent, coalesce, emptyLive, type AnswerState } from './applyEvent';
import { STREAM_EVENT_TYPES, USER_EVENT_TYPES, type StreamEvent, type UserEvent } from './events.gen';
// One example per event type, validated against the backend's OpenAPI schemas by
// tests/unit/test_event_types_drift.py.
import examples from './events.examples.json';
import type { Message } from './types';

const streamExamples = examples.stream as StreamEvent[];
const userExamples = examples.user as UserEvent[];

function example<T extends StreamEvent['type']>(type: T): Extract<StreamEvent, { type: T }> {
  const found = streamExamples.find((e) => e.type === type);
  if (!found) throw new Error(`no example of ${type}`);
  return found as Extract<StreamEvent, { type: T }>;
}

function message(id: string, role: Message['role'], content: string, parent: string | null, status: Message['status'] = 'complete'): Message {
  return {
    id, chat_id: '', parent_id: parent, role, content, reasoning: null, status, model: null, usage: null,
    sources: null, error: null, created_at: '2026-01-01T00:00:00Z',
  };
}

/** A new chat's first message, sent and not started yet: local placeholders. */
function sending(): AnswerState {
  return {
    chatId: null,
    messages: [message('local-user-1', 'user', 'hi', null), message('local-answer-2', 'assistant', '', 'local-user-1', 'streaming')],
    live: emptyLive('local-answer-2'),
  };
}

/** After `start`: the stored ids, some text shown. */
function streaming(): AnswerState {
  return {
    chatId: 'c1',
    messages: [message('u1', 'user', 'hi', null), message('a1', 'assistant', '', 'u1', 'streaming')],
    live: { ...emptyLive('a1', 'Hel', 'Think'), stage: 'searching' },
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

describe('the examples', () => {
  it('hold one event of every type the schema lists', () => {
    expect(streamExamples.map((e) => e.type).sort()).toEqual([...STREAM_EVENT_TYPES].sort());
    expect(userExamples.map((e) => e.type).sort()).toEqual([...USER_EVENT_TYPES].sort());
  });
});

describe('applyEvent', () => {
  it('start gives the placeholders their stored ids and the new chat its id', () => {
    const next = applyEvent(sending(), example('start'));
    expect(next.chatId).toBe('c1');
    expect(next.messages.map((m) => [m.id, m.chat_id, m.parent_id])).toEqual([['u1', 'c1', null], ['a1', 'c1', 'u1']]);
    expect(next.messages[1].model).toBe('fake-model');
    expect(next.live).toMatchObject({ messageId: 'a1', content: '', reasoning: '' });
  });

  it('start of a replay drops what a checkpoint showed; of a continuation, starts from its text', () => {
    expect(applyEvent(streaming(), example('start')).live.content).toBe('');
    const continued = applyEvent(streaming(), { ...example('start'), continues: 'Once upon' });
    expect(continued.live.content).toBe('Once upon');
    expect(continued.chatId).toBe('c1');
  });

  it('status shows the step until it is done', () => {
    expect(applyEvent(sending(), example('status')).live.stage).toBe('Searching the web');
    expect(applyEvent(streaming(), { ...example('status'), done: true }).live.stage).toBeNull();
    expect(applyEvent(sending(), { ...example('status'), detail: '' }).live.stage).toBe('searching');
  });

  it('delta and reasoning append to the answer and to its reasoning', () => {
    const state = applyEvent(applyEvent(streaming(), example('delta')), example('reasoning'));
    expect(state.live.content).toBe('HelHello');
    expect(state.live.reasoning).toBe('ThinkThe user greets me. ');
  });

  it("resync replaces the text shown with the server's", () => {
    const next = applyEvent(streaming(), example('resync'));
    expect(next.live.content).toBe('Hello, world');
    expect(next.live.reasoning).toBe('The user greets me. I greet back.');
    expect(applyEvent(streaming(), { ...example('resync'), reasoning: null }).live.reasoning).toBe('');
  });

  it('sources, usage and error are kept on the live answer', () => {
    expect(applyEvent(streaming(), example('sources')).live.sources).toEqual([{ n: 1, url: 'https://example.org/', title: 'Example' }]);
    expect(applyEvent(streaming(), example('usage')).live.usage).toEqual({ prompt_tokens: 12, completion_tokens: 3 });
    expect(applyEvent(streaming(), example('error')).live.error).toEqual({ code: 'upstream_error', message: 'The model failed', retryable: true });
  });

  it('tool_call and tool_result keep the calls on the live answer; done stores them', () => {
    let state = applyEvent(streaming(), example('tool_call'));
    expect(state.live.toolCalls).toEqual([
      { call_id: 'call_1', name: 'current_time', arguments: '{"timezone": "UTC"}', ok: null, content: null, elapsed_ms: null },
    ]);
    state = applyEvent(state, example('tool_result'));
    const done = { call_id: 'call_1', name: 'current_time', arguments: '{"timezone": "UTC"}', ok: true, content: '2026-01-01T12:00:00+00:00 (UTC)', elapsed_ms: 3 };
    expect(state.live.toolCalls).toEqual([done]);
    expect(applyEvent(state, example('done')).messages[1].tool_calls).toEqual([done]);
    expect(applyEvent(state, example('start')).live.toolCalls).toEqual([]);
  });

  it('done makes the live answer the message and ends the live answer', () => {
    let state = applyEvent(streaming(), example('sources'));
    state = applyEvent(state, example('error'));
    const next = applyEvent(state, example('done'));
    expect(next.live).toEqual(emptyLive());
    expect(next.messages[1]).toMatchObject({
      id: 'a1', content: 'Hel', reasoning: 'Think', status: 'error', finish_reason: null,
      usage: { prompt_tokens: 12, completion_tokens: 3 }, error: { code: 'upstream_error' },
      sources: [{ n: 1, url: 'https://example.org/', title: 'Example' }],
    });
    expect(next.messages[0]).toBe(state.messages[0]);
  });

  it('ping and types this build does not know change nothing', () => {
    const state = streaming();
    expect(applyEvent(state, example('ping'))).toBe(state);
    expect(applyEvent(state, { type: 'tool_approval', call_id: 'x' } as unknown as StreamEvent)).toBe(state);
  });

  it('never changes the state it is given, whatever the event', () => {
    for (const base of [sending(), streaming()]) {
      const frozen = deepFreeze(base);
      const copy = JSON.stringify(frozen);
      for (const event of streamExamples) applyEvent(frozen, event);
      expect(JSON.stringify(frozen)).toBe(copy);
    }
  });

  it('the whole example stream, in order, ends with the stored answer', () => {
    const end = streamExamples.reduce(applyEvent, sending());
    expect(end.chatId).toBe('c1');
    expect(end.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(end.messages[1]).toMatchObject({ content: 'Hello, world', reasoning: 'The user greets me. I greet back.', status: 'error' });
    expect(end.live.messageId).toBeNull();
  });
});

describe('coalesce', () => {
  it('joins consecutive deltas of one kind and keeps the order of the rest', () => {
    const events: StreamEvent[] = [
      { type: 'delta', delta: 'a' }, { type: 'delta', delta: 'b' }, { type: 'reasoning', delta: 'r' },
      { type: 'reasoning', delta: 's' }, { type: 'delta', delta: 'c' }, example('usage'), { type: 'delta', delta: 'd' },
    ];
    expect(coalesce(events)).toEqual([
      { type: 'delta', delta: 'ab' }, { type: 'reasoning', delta: 'rs' }, { type: 'delta', delta: 'c' },
      example('usage'), { type: 'delta', delta: 'd' },
    ]);
    const state = streaming();
    expect(coalesce(events).reduce(applyEvent, state)).toEqual(events.reduce(applyEvent, state));
  });
});
