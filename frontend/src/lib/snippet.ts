/**
 * Search snippets are cut from the stored markdown: show them as plain text. Markup is
 * dropped, the `<mark>` highlights the server put in are kept (sanitizeSnippet runs after).
 */
const RULES: Array<[RegExp, string]> = [
  [/```[\w+-]*/g, ' '], // code fences (and their language)
  [/!?\[([^\]]*)\]\([^)\s]*(?:\s+"[^"]*")?\)/g, '$1'], // links and images: their text
  [/\[([^\]]+)\]\[[^\]]*\]/g, '$1'], // reference links
  [/(^|\s)#{1,6}\s+/g, '$1'], // headings
  [/(^|\s)>\s?/g, '$1'], // quotes
  [/(^|\n)\s*(?:[-*+]|\d+[.)])\s+/g, '$1'], // list markers at a line start
  [/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, '$2'], // bold
  [/(^|[^\w*])[*_](?=\S)([^*_\n]*?\S)[*_](?![\w*])/g, '$1$2'], // italics
  [/~~(?=\S)([\s\S]*?\S)~~/g, '$1'], // strikethrough
  [/`+/g, ''], // inline code ticks
  [/\$\$|\\\[|\\\]/g, ' '], // display maths delimiters
  [/\|/g, ' '], // table pipes
  [/(^|\s)-{3,}(?=\s|$)/g, '$1'], // rules and table separators
];

export function plainSnippet(snippet: string): string {
  let text = snippet;
  for (const [pattern, replacement] of RULES) text = text.replace(pattern, replacement);
  return text.replace(/\s+/g, ' ').trim();
}
