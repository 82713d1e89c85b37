/** Profile, suggested prompts, usage and import: the settings and usage pages' API calls. */
import { readCookie, request } from './api';
import type { User } from './types';

export interface Profile extends User {
  default_model: string | null;
  default_system_prompt: string | null;
}

export interface UsageTotals {
  messages: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
  estimated_messages: number;
}

export interface ModelUsage extends UsageTotals {
  model: string;
}

export interface DayUsage {
  date: string;
  items: ModelUsage[];
  totals: UsageTotals;
}

export interface UsageReport {
  scope: 'user' | 'team';
  items: ModelUsage[];
  totals: UsageTotals;
  users?: Array<{ user_id: string; email: string | null; items: ModelUsage[]; totals: UsageTotals }>;
}

export interface ImportReport {
  imported: Array<{ title: string; chat_id: string; messages: number }>;
  skipped: Array<{ title: string; reason: string }>;
}

export const accountApi = {
  profile: () => request<Profile>('GET', '/api/auth/me'),
  updateProfile: (changes: Partial<Pick<Profile, 'display_name' | 'default_model' | 'default_system_prompt'>>) =>
    request<Profile>('PATCH', '/api/auth/me', changes),
  changePassword: (current_password: string, new_password: string) =>
    request<unknown>('POST', '/api/auth/password', { current_password, new_password }),

  suggestions: async (): Promise<string[]> =>
    (await request<{ items: string[] }>('GET', '/api/settings/suggestions')).items,
  setSuggestions: async (items: string[]): Promise<string[]> =>
    (await request<{ items: string[] }>('PUT', '/api/admin/suggestions', { items })).items,

  usage: (all: boolean) => request<UsageReport>('GET', `/api/usage${all ? '?all=true' : ''}`),
  dailyUsage: (days: number, all: boolean) =>
    request<{ scope: string; days: DayUsage[] }>('GET', `/api/usage/daily?days=${days}${all ? '&all=true' : ''}`),
};

/**
 * Upload an import file with progress (fetch has no upload progress: XMLHttpRequest does).
 * Resolves with the server's report; rejects with the server's error message.
 */
export function uploadImport(file: File, onProgress: (fraction: number) => void): Promise<ImportReport> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/import');
    xhr.withCredentials = true;
    const csrf = readCookie('gust_csrf');
    if (csrf) xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        onProgress(1);
        resolve(body as ImportReport);
      } else {
        const message = (body as { error?: { message?: string } } | null)?.error?.message;
        reject(new Error(message ?? `${xhr.status} ${xhr.statusText}`));
      }
    };
    xhr.onerror = () => reject(new Error('The upload failed: check the connection.'));
    xhr.send(file);
  });
}
