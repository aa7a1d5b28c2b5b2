/// <reference lib="dom" />
// DOM helpers. Text always goes in as text nodes or textContent: nothing a device or user wrote is parsed as HTML.

export type Child = Node | string | number | null | undefined | false;
type Attr = string | number | boolean | undefined | ((e: Event) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, Attr> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

let nextId = 0;
export const uid = (p: string) => `${p}-${++nextId}`;

export interface Field<E extends HTMLElement> {
  wrap: HTMLDivElement;
  input: E;
  error: HTMLDivElement;
  setError(message: string): void;
}

/** A labelled control with its error line right below it (aria-describedby ties them). */
export function field<E extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(label: string, input: E, hint?: string): Field<E> {
  const id = input.id || uid('f');
  input.id = id;
  const error = h('div', { class: 'error', id: `${id}-error`, role: 'alert' });
  input.setAttribute('aria-describedby', `${id}-error`);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('div', { class: 'muted' }, hint) : null, error);
  return {
    wrap,
    input,
    error,
    setError(message: string) {
      error.textContent = message;
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

export const text = (value = '', attrs: Record<string, Attr> = {}) => h('input', { type: 'text', value, autocomplete: 'off', spellcheck: 'false', ...attrs });
export const area = (value = '', attrs: Record<string, Attr> = {}) => {
  const t = h('textarea', { spellcheck: 'false', ...attrs });
  t.value = value;
  return t;
};
export function select(options: [string, string][], value?: string): HTMLSelectElement {
  const s = h('select', {}, ...options.map(([v, label]) => h('option', { value: v }, label)));
  if (value !== undefined) s.value = value;
  return s;
}

/** A group of radio buttons in a fieldset with a legend (how screen readers announce the choice). */
export function radios(legend: string, name: string, options: [string, string][], value: string, onChange?: (v: string) => void): { el: HTMLFieldSetElement; value(): string } {
  const el = h('fieldset', { class: 'radios' }, h('legend', {}, legend));
  for (const [v, label] of options) {
    const id = uid(name);
    const input = h('input', { type: 'radio', name, id, value: v, checked: v === value });
    if (onChange) input.addEventListener('change', () => onChange(v));
    append(el, [input, h('label', { for: id }, label)]);
  }
  return { el, value: () => (el.querySelector<HTMLInputElement>('input:checked')?.value ?? value) };
}

export function button(label: string, onClick: (e: Event) => void | Promise<void>, primary = false, attrs: Record<string, Attr> = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', class: primary ? 'primary' : undefined, ...attrs }, label);
  b.addEventListener('click', async (e) => {
    b.disabled = true;
    try {
      await onClick(e);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** Azure's confirmation: a modal dialog answered Yes or No. */
export function confirmDialog(message: string): Promise<boolean> {
  return new Promise((resolve) => {
    const d = h('dialog', { 'aria-labelledby': 'confirm-text' });
    const done = (v: boolean) => {
      d.close();
      d.remove();
      resolve(v);
    };
    const yes = h('button', { type: 'button', class: 'primary' }, 'Yes');
    yes.addEventListener('click', () => done(true));
    const no = h('button', { type: 'button' }, 'No');
    no.addEventListener('click', () => done(false));
    append(d, [h('p', { id: 'confirm-text' }, message), h('div', { class: 'toolbar' }, yes, no)]);
    d.addEventListener('cancel', () => done(false));
    document.body.appendChild(d);
    d.showModal();
    yes.focus();
  });
}

export function table(headers: string[], rows: Child[][], caption?: string): HTMLTableElement {
  return h(
    'table',
    {},
    caption ? h('caption', { class: 'muted' }, caption) : null,
    h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

/** A secret shown masked, with Show and Copy buttons (Azure's key fields). */
export function secret(label: string, value: string): HTMLDivElement {
  const input = h('input', { type: 'password', value, readonly: true });
  const f = field(label, input);
  const show = button('Show', () => {
    const masked = input.type === 'password';
    input.type = masked ? 'text' : 'password';
    show.textContent = masked ? 'Hide' : 'Show';
  }, false, { 'aria-label': `Show ${label}` });
  const copy = button('Copy', async () => {
    await navigator.clipboard?.writeText(value).catch(() => undefined);
    copy.textContent = 'Copied';
  }, false, { 'aria-label': `Copy ${label}` });
  const row = h('div', { class: 'inline' });
  f.wrap.replaceChild(row, input);
  append(row, [input, show, copy]);
  return f.wrap;
}

export const pretty = (v: unknown) => JSON.stringify(v, null, 2);
