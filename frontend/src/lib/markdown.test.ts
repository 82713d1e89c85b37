// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';
import { IncrementalMarkdown, loadHighlighter, loadMath, renderMarkdown, sanitize, sanitizeSnippet } from './markdown';

function html(source: string): string {
  return renderMarkdown(source).join('');
}

function dom(markup: string): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = markup;
  return div;
}

/** Every attribute of every element: nothing executable may survive. */
function assertInert(markup: string): void {
  const root = dom(markup);
  expect(root.querySelectorAll('script, iframe, object, embed, img, style, form').length).toBe(0);
  for (const el of root.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      expect(attr.name.startsWith('on'), `${el.tagName} has ${attr.name}`).toBe(false);
      expect(/^\s*(javascript|vbscript|data):/i.test(attr.value), `${el.tagName} ${attr.name}=${attr.value}`).toBe(false);
    }
  }
}

describe('sanitisation', () => {
  it('shows raw HTML from the model as text', () => {
    const out = html('Look: <img src=x onerror=alert(1)> and <script>alert(2)</script>');
    assertInert(out);
    expect(dom(out).textContent).toContain('<img src=x onerror=alert(1)>');
    expect(dom(out).textContent).toContain('<script>alert(2)</script>');
  });

  it('drops javascript:, vbscript: and data: links but keeps their text', () => {
    const out = html('[click](javascript:alert(1)) [v](vbscript:x) [d](data:text/html,<b>x</b>) <javascript:alert(3)>');
    assertInert(out);
    expect(dom(out).querySelectorAll('a[href]').length).toBe(0);
    expect(dom(out).textContent).toContain('click');
  });

  it('obfuscated javascript: links stay inert', () => {
    const out = html('[a](JaVaScRiPt:alert(1)) [b]( javascript:alert(1)) [c](java&#x09;script:alert(1)) [d](&#106;avascript:alert(1))');
    assertInert(out);
  });

  it('keeps safe links and opens them in a new tab without opener', () => {
    const link = dom(html('[Gust](https://example.com/a?b=1 "t")')).querySelector('a');
    expect(link?.getAttribute('href')).toBe('https://example.com/a?b=1');
    expect(link?.getAttribute('target')).toBe('_blank');
    expect(link?.getAttribute('rel')).toContain('noopener');
  });

  it('turns images into links (no external loads)', () => {
    const out = html('![a cat](https://example.com/cat.png) ![x](javascript:alert(1))');
    assertInert(out);
    expect(dom(out).querySelector('a.image-link')?.textContent).toBe('a cat');
  });

  it('sanitize() strips handlers and scripts from any HTML', () => {
    const out = sanitize('<p onclick="x()">a</p><script>x()</script><a href="javascript:x()">b</a><svg><script>x()</script></svg>');
    assertInert(out);
    expect(dom(out).textContent).toContain('a');
  });

  it('search snippets keep only <mark>', () => {
    const out = sanitizeSnippet('a <mark>b</mark> <img src=x onerror=alert(1)><b>c</b>');
    expect(out).toBe('a <mark>b</mark> c');
  });
});

describe('code blocks', () => {
  it('have a language label and a copy button, and escape their content', () => {
    const root = dom(html('```python\nprint("<b>hi</b>")\n```'));
    expect(root.querySelector('.code-lang')?.textContent).toBe('python');
    expect(root.querySelector('button[data-copy-code]')).not.toBeNull();
    expect(root.querySelector('code')?.textContent).toBe('print("<b>hi</b>")');
    expect(root.querySelector('code b')).toBeNull();
  });

  it('are highlighted once highlight.js has loaded', async () => {
    await loadHighlighter();
    const root = dom(html('```js\nconst x = 1;\n```'));
    expect(root.querySelector('code.language-js .hljs-keyword')?.textContent).toBe('const');
  });

  it('without a language are labelled as text', () => {
    expect(dom(html('```\nplain\n```')).querySelector('.code-lang')?.textContent).toBe('text');
  });
});

describe('math', () => {
  it('renders $…$ and $$…$$ with KaTeX and leaves prices alone', async () => {
    await loadMath();
    const root = dom(html('Euler: $e^{i\\pi}+1=0$ costs $5 and $10.\n\n$$\\int_0^1 x\\,dx$$'));
    expect(root.querySelectorAll('.katex').length).toBe(2);
    expect(root.querySelector('.math-display .katex-display')).not.toBeNull();
    expect(root.textContent).toContain('costs $5 and $10.');
  });

  it('renders \\( \\) and \\[ \\] delimiters', async () => {
    await loadMath();
    const root = dom(html('Inline \\(a^2\\) and\n\n\\[b^2\\]'));
    expect(root.querySelectorAll('.katex').length).toBe(2);
  });
});

describe('IncrementalMarkdown', () => {
  const doc = [
    '# Title\n\n',
    'First paragraph with **bold** text.\n\n',
    '- one\n- two\n\n',
    '```ts\nconst a = 1;\nconst b = 2;\n```\n\n',
    '| a | b |\n|---|---|\n| 1 | 2 |\n\n',
    'Last paragraph.',
  ].join('');

  it('gives the same result as a full render, whatever the token boundaries', () => {
    for (const step of [1, 3, 7, 50]) {
      const incremental = new IncrementalMarkdown();
      let blocks: string[] = [];
      for (let end = step; end < doc.length + step; end += step) {
        blocks = incremental.update(doc.slice(0, Math.min(end, doc.length)));
      }
      expect(incremental.finish(doc).join('')).toBe(html(doc));
      expect(dom(blocks.join('')).textContent).toBe(dom(html(doc)).textContent);
    }
  });

  it('renders each finished block once and only the last block per update', () => {
    const incremental = new IncrementalMarkdown();
    const paragraphs = Array.from({ length: 50 }, (_, i) => `Paragraph number ${i} with some words.`);
    let text = '';
    let updates = 0;
    for (const p of paragraphs) {
      for (const word of (p + '\n\n').split(/(?<= )/)) {
        text += word;
        incremental.update(text);
        updates++;
      }
    }
    // One render of the open block per update, plus each finished block once.
    expect(incremental.renders).toBeLessThanOrEqual(updates + paragraphs.length);
    expect(incremental.update(text)).toHaveLength(50);
  });

  it('keeps an unterminated code fence open until it closes', () => {
    const incremental = new IncrementalMarkdown();
    let blocks = incremental.update('Intro\n\n```py\nx = 1\n\ny = 2');
    expect(blocks).toHaveLength(2);
    expect(dom(blocks[1]).querySelector('code')?.textContent).toBe('x = 1\n\ny = 2');
    blocks = incremental.update('Intro\n\n```py\nx = 1\n\ny = 2\n```\n\nDone.');
    expect(blocks).toHaveLength(3);
    expect(dom(blocks[2]).textContent?.trim()).toBe('Done.');
  });

  it('starts over when the text is replaced rather than extended', () => {
    const incremental = new IncrementalMarkdown();
    incremental.update('Alpha\n\nBeta');
    expect(dom(incremental.update('Gamma').join('')).textContent?.trim()).toBe('Gamma');
  });

  it('sanitises streamed blocks too', () => {
    const incremental = new IncrementalMarkdown();
    const payload = 'x <img src=x onerror=alert(1)> [l](javascript:alert(1))\n\n<script>alert(1)</script>';
    let out: string[] = [];
    for (let i = 1; i <= payload.length; i++) out = incremental.update(payload.slice(0, i));
    assertInert(out.join(''));
  });
});

describe('display maths ($$…$$)', () => {
  it.each([
    ['$$x^2$$', ['x^2']],
    ['Text $$x^2$$ more', ['x^2']],
    ['Intro:\n$$\na+b\n$$\nAfter', ['a+b']],
    ['$$a$$ and $$b$$', ['a', 'b']],
    ['Sum:\n\n$$\n\\sum_i x_i\n$$.', ['\\sum_i x_i.']],
    ['- item $$y$$', ['y']],
    ['$$\na\n$$ trailing', ['a']],
  ])('%j leaves no stray dollar', (source, formulas) => {
    const root = dom(html(source));
    expect(root.textContent).not.toContain('$');
    // KaTeX keeps the TeX source (in a MathML annotation) among what it typesets.
    const found = [...root.querySelectorAll('.math-display')];
    expect(found).toHaveLength(formulas.length);
    found.forEach((el, i) => expect(el.textContent).toContain(formulas[i]));
  });

  it('keeps prices as text', () => {
    expect(dom(html('It costs $5 and $10.')).textContent?.trim()).toBe('It costs $5 and $10.');
  });
});

describe('keyboard access to scrolling blocks', () => {
  it('makes code blocks and tables focusable, named regions', () => {
    const root = dom(html('```python\nprint("x")\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |'));
    const pre = root.querySelector('pre');
    expect(pre?.getAttribute('tabindex')).toBe('0');
    expect(pre?.getAttribute('aria-label')).toBe('Code (python)');
    const wrap = root.querySelector('.table-wrap');
    expect(wrap?.getAttribute('tabindex')).toBe('0');
    expect(wrap?.getAttribute('role')).toBe('region');
    expect(wrap?.getAttribute('aria-label')).toBe('Table');
    expect(wrap?.querySelector('table td')?.textContent).toBe('1');
  });
});
