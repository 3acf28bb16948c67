// DOT escaping: one function for quoted ids and strings, one for HTML-like label text. Whatever
// the input, the output stays inside its quotes or its `<…>` and draws the characters as given.

// C0 controls (except tab and the newlines handled below) and DEL: Graphviz passes them to the SVG,
// where they make the XML invalid, and its HTML-label parser rejects them outright.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
const REPLACEMENT = '\ufffd';

/**
 * A DOT double-quoted string: `"` → `\"`, `\` → `\\` (Graphviz reads `\N`, `\G`, `\l` in labels as
 * escapes, and a lone trailing `\` would swallow the closing quote), newline → `\n`, control
 * characters → U+FFFD. Used for every id and every plain-string attribute value.
 * @example quoteDot('say "hi"\\') === '"say \\"hi\\"\\\\"'
 */
export function quoteDot(s: string): string {
  const body = s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\r\n|\r|\n/g, '\\n')
    .replace(/\t/g, ' ')
    .replace(CONTROL, REPLACEMENT);
  return `"${body}"`;
}

/**
 * Text for an HTML-like label (`label=<…>`): `&`, `<`, `>`, `"`, `'` become entities (so the
 * label's angle brackets stay balanced and no markup can be injected); `\` is doubled (Graphviz
 * expands `\N` and friends even inside HTML labels, after decoding entities); a newline becomes
 * `<br/>`; control characters become U+FFFD.
 * @example escapeHtml('a<b> & "c"') === 'a&lt;b&gt; &amp; &quot;c&quot;'
 */
export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
    .replace(/\\/g, '\\\\')
    .replace(/\t/g, ' ')
    .replace(CONTROL, REPLACEMENT)
    .replace(/\r\n|\r|\n/g, '<br/>');
}
