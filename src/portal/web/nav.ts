/// <reference lib="dom" />
import { describe } from './api.js';

export type Page = (main: HTMLElement, params: string[], query: URLSearchParams) => void | Promise<void>;
export interface Route {
  pattern: RegExp;
  page: Page;
  needs?: 'hub' | 'dps';
}

export function go(path: string): void {
  location.hash = `#/${path}`;
}

/** Runs an API call; its error (the service's code and message) goes to `show`, next to the field it concerns. */
export async function attempt<T>(f: () => Promise<T>, show: (message: string) => void): Promise<T | undefined> {
  show('');
  try {
    return await f();
  } catch (e) {
    show(describe(e));
    return undefined;
  }
}
