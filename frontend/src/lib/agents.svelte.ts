/** The team's agents, loaded once per session: the new-chat picker and the answers' badge. */
import { api, type Agent } from './api';

export type AgentInfo = Agent & { avatar_url?: string | null };

export const agentList = $state({ items: [] as AgentInfo[], loaded: false });

export async function loadAgents(): Promise<void> {
  try {
    agentList.items = (await api.agents()) as AgentInfo[];
  } catch {
    agentList.items = [];
  } finally {
    agentList.loaded = true;
  }
}

export function agentById(id: string | null | undefined): AgentInfo | null {
  return id ? (agentList.items.find((a) => a.id === id) ?? null) : null;
}
