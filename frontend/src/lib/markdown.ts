/**
 * Markdown to safe HTML.
 *
 * Raw HTML in a message is shown as text, never interpreted; every rendered block goes
 * through DOMPurify anyway (no script, no event handlers, no javascript: URLs).
 * highlight.js and KaTeX are loaded on first need: until then code is plain and math
 * shows its TeX, and `onRendererUpgrade` listeners are told to render again.
 */
import DOMPurify from 'dompurify';
import { Marked, Renderer, type Token, type Tokens, type TokensList } from 'marked';
import { t } from './i18n';

type HighlightJs = typeof import('highlight.js').default;
type Katex = typeof import('katex').default;

let hljs: HighlightJs | null = null;
let katex: Katex | null = null;
let hljsLoading: Promise<void> | null = null;
let katexLoading: Promise<void> | null = null;
let version = 0;
const upgradeListeners = new Set<() => void>();

/** Bumped whenever a lazily loaded renderer arrives (cached HTML is then stale). */
export function rendererVersion(): number {
  return version;
}

/** Be told when highlighting or math rendering becomes available. */
export function onRendererUpgrade(listener: () => void): () => void {
  upgradeListeners.add(listener);
  return () => upgradeListeners.delete(listener);
}

function upgraded(): void {
  version++;
  blockCache.clear();
  for (const listener of upgradeListeners) listener();
}

export function loadHighlighter(): Promise<void> {
  hljsLoading ??= import('highlight.js/lib/common').then((module) => {
    hljs = module.default;
    upgraded();
  });
  return hljsLoading;
}

export function loadMath(): Promise<void> {
  katexLoading ??= Promise.all([import('katex'), import('katex/dist/katex.min.css')]).then(([module]) => {
    katex = module.default;
    upgraded();
  });
  return katexLoading;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

/** `inParagraph`: display maths written inside a line of text (`$$…$$` there): a span. */
function renderMath(tex: string, display: boolean, inParagraph = false): string {
  if (katex === null) {
    void loadMath().catch(() => undefined);
    const cls = display ? 'math math-display math-pending' : 'math math-pending';
    return `<span class="${cls}">${escapeHtml(tex)}</span>`;
  }
  const html = katex.renderToString(tex, { displayMode: display, throwOnError: false, trust: false, strict: 'ignore' });
  if (!display) return html;
  return inParagraph ? `<span class="math math-display">${html}</span>` : `<div class="math math-display">${html}</div>`;
}

interface RenderFlags {
  /** The block is still being streamed: skip costly highlighting until it is complete. */
  open: boolean;
}
let flags: RenderFlags = { open: false };

function renderCode(text: string, lang: string | undefined): string {
  const language = (lang ?? '').trim().split(/\s+/)[0].toLowerCase();
  let body: string;
  if (language && hljs === null && !flags.open) void loadHighlighter().catch(() => undefined);
  if (language && hljs !== null && !flags.open && hljs.getLanguage(language)) {
    body = hljs.highlight(text, { language, ignoreIllegals: true }).value;
  } else {
    body = escapeHtml(text);
  }
  const label = escapeHtml(language || t.code.plain);
  const cls = language ? ` class="hljs language-${escapeHtml(language)}"` : ' class="hljs"';
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy-code" data-copy-code>${escapeHtml(t.code.copy)}</button></div>` +
    // Focusable and named: a code block that scrolls sideways can be scrolled with the keyboard.
    `<pre tabindex="0" aria-label="${escapeHtml(t.code.region(language || t.code.plain))}"><code${cls}>${body}</code></pre></div>`
  );
}

const mathBlock = {
  name: 'mathBlock',
  level: 'block' as const,
  start(src: string) {
    const match = src.match(/^ {0,3}(\$\$|\\\[)/m);
    return match?.index;
  },
  tokenizer(src: string) {
    // The formula may not contain `$$` (then it is `$$a$$ and $$b$$`: inline maths), and
    // the closing delimiter ends the line, but for a final punctuation mark.
    const match = /^ {0,3}(?:\$\$((?:(?!\$\$)[\s\S])+?)\$\$|\\\[([\s\S]+?)\\\])[ \t]*([.,;:!?]?)[ \t]*(?:\n|$)/.exec(src);
    if (!match) return undefined;
    // A final punctuation mark belongs to the formula's sentence: typeset with it.
    return { type: 'mathBlock', raw: match[0], text: (match[1] ?? match[2]).trim() + (match[3] ?? '') };
  },
  renderer(token: Tokens.Generic) {
    return renderMath(token.text as string, true) + '\n';
  },
};

const mathInline = {
  name: 'mathInline',
  level: 'inline' as const,
  start(src: string) {
    const match = src.match(/\$|\\\(/);
    return match?.index;
  },
  tokenizer(src: string) {
    // $…$ needs non-space just inside both dollars and no digit right after the closing
    // one, so prices like "$5 and $10" stay text.
    // `$$…$$` inside a line of text is display maths too (no stray dollars left around it).
    const display = /^\$\$((?:(?!\$\$)[\s\S])+?)\$\$/.exec(src);
    if (display) return { type: 'mathInline', raw: display[0], text: display[1].trim(), display: true };
    const match = /^\$(?!\s)((?:\\.|[^\\$\n])+?)(?<!\s)\$(?!\d)|^\\\(([\s\S]+?)\\\)/.exec(src);
    if (!match) return undefined;
    return { type: 'mathInline', raw: match[0], text: (match[1] ?? match[2]).trim() };
  },
  renderer(token: Tokens.Generic) {
    return renderMath(token.text as string, token.display === true, true);
  },
};

const SAFE_URL = /^(?:https?:|mailto:|#|\/(?!\/))/i;

function safeHref(href: string): string | null {
  const trimmed = href.trim();
  return SAFE_URL.test(trimmed) ? trimmed : null;
}

const defaultRenderer = new Renderer();

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  extensions: [mathBlock, mathInline],
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code) {
      return renderCode(text, lang);
    },
    table(this: Renderer, token: Tokens.Table) {
      // A wide table scrolls sideways in its own focusable region (keyboard users too).
      const html = defaultRenderer.table.call(this, token);
      return `<div class="table-wrap" tabindex="0" role="region" aria-label="${escapeHtml(t.code.table)}">${html}</div>`;
    },
    link(this: { parser: { parseInline(tokens: Token[]): string } }, { href, title, tokens }: Tokens.Link) {
      const text = this.parser.parseInline(tokens);
      const url = safeHref(href);
      if (url === null) return text;
      const titleAttr = title ? ` title="${escapeHtml(title)}"` : '';
      return `<a href="${escapeHtml(url)}"${titleAttr} target="_blank" rel="noopener noreferrer nofollow">${text}</a>`;
    },
    image({ href, text }: Tokens.Image) {
      // External images would be blocked by the CSP and could track readers: link them.
      const url = safeHref(href);
      const label = escapeHtml(text || href);
      if (url === null) return label;
      return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer nofollow" class="image-link">${label}</a>`;
    },
  },
});

let purifyConfigured = false;

function configurePurify(): void {
  if (purifyConfigured) return;
  purifyConfigured = true;
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A') {
      const href = node.getAttribute('href');
      if (href !== null && safeHref(href) === null) node.removeAttribute('href');
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  });
}

const PURIFY_OPTIONS = {
  ADD_ATTR: ['target'],
  FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'iframe', 'object', 'embed', 'img', 'video', 'audio'],
  FORBID_ATTR: ['srcset', 'action', 'formaction'],
  ALLOW_UNKNOWN_PROTOCOLS: false,
};

/** Sanitise HTML for insertion with innerHTML. */
export function sanitize(html: string): string {
  configurePurify();
  return DOMPurify.sanitize(html, PURIFY_OPTIONS) as unknown as string;
}

/** Sanitise a search snippet: text with <mark> only. */
export function sanitizeSnippet(html: string): string {
  return DOMPurify.sanitize(html, { ALLOWED_TAGS: ['mark'], ALLOWED_ATTR: [] }) as unknown as string;
}

// Rendered blocks by source text: finished blocks are never rendered twice.
const BLOCK_CACHE_SIZE = 2000;
const blockCache = new Map<string, string>();

function renderTokens(tokens: Token[], links: TokensList['links'], open: boolean): string {
  const list = Object.assign(tokens.slice(), { links }) as TokensList;
  flags = { open };
  try {
    return sanitize(marked.parser(list));
  } finally {
    flags = { open: false };
  }
}

function renderBlock(token: Token, links: TokensList['links']): string {
  const cached = blockCache.get(token.raw);
  if (cached !== undefined) {
    blockCache.delete(token.raw);
    blockCache.set(token.raw, cached);
    return cached;
  }
  const html = renderTokens([token], links, false);
  blockCache.set(token.raw, html);
  if (blockCache.size > BLOCK_CACHE_SIZE) {
    const oldest = blockCache.keys().next().value;
    if (oldest !== undefined) blockCache.delete(oldest);
  }
  return html;
}

export function normalize(source: string): string {
  return source.replace(/\r\n?/g, '\n');
}

function lex(source: string): TokensList {
  return marked.lexer(source);
}

/** A whole (finished) message as HTML blocks. */
export function renderMarkdown(source: string): string[] {
  const tokens = lex(normalize(source));
  const blocks: string[] = [];
  for (const token of tokens) {
    if (token.type === 'space') continue;
    blocks.push(renderBlock(token, tokens.links));
  }
  return blocks;
}

/**
 * Streaming renderer: the text only grows, so every block before the last one is final.
 * Each update lexes only from the start of the last open block and re-renders only it.
 */
export class IncrementalMarkdown {
  private source = '';
  private stableLength = 0;
  private stableBlocks: string[] = [];
  private renderedVersion = version;
  /** How many blocks were rendered in total (tests check that finished ones are reused). */
  renders = 0;

  update(text: string): string[] {
    const source = normalize(text);
    if (!source.startsWith(this.source) || this.renderedVersion !== version) this.reset();
    this.source = source;
    const tokens = lex(source.slice(this.stableLength));
    let last = tokens.length - 1;
    while (last >= 0 && tokens[last].type === 'space') last--;
    // Everything before the last content block is complete: render it once, keep it.
    for (let i = 0; i < last; i++) {
      const token = tokens[i];
      this.stableLength += token.raw.length;
      if (token.type === 'space') continue;
      this.stableBlocks.push(renderBlock(token, tokens.links));
      this.renders++;
    }
    if (last < 0) return this.stableBlocks.slice();
    this.renders++;
    return [...this.stableBlocks, renderTokens([tokens[last]], tokens.links, true)];
  }

  /** The final rendering once the stream ended (the last block gets highlighting). */
  finish(text: string): string[] {
    this.reset();
    return renderMarkdown(text);
  }

  reset(): void {
    this.source = '';
    this.stableLength = 0;
    this.stableBlocks = [];
    this.renderedVersion = version;
  }
}
