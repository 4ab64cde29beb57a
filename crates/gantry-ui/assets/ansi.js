// ANSI SGR colours of a log line as spans with classes (the 16 colours) or
// inline colours (256 and true colour); other escape sequences are dropped.
// Text only ever becomes text nodes, never markup.

const ESCAPE = /\x1b\[([0-9;]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/g;

function palette256(n) {
  if (n < 16) return null;
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  const i = n - 16; const c = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
}

function apply(style, codes) {
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) { for (const k of Object.keys(style)) delete style[k]; }
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = true;
    else if (code === 22) { delete style.bold; delete style.dim; }
    else if (code === 23) delete style.italic;
    else if (code === 24) delete style.underline;
    else if (code >= 30 && code <= 37) { style.fg = code - 30; delete style.fgColor; }
    else if (code >= 90 && code <= 97) { style.fg = code - 90 + 8; delete style.fgColor; }
    else if (code === 39) { delete style.fg; delete style.fgColor; }
    else if (code >= 40 && code <= 47) { style.bg = code - 40; delete style.bgColor; }
    else if (code >= 100 && code <= 107) { style.bg = code - 100 + 8; delete style.bgColor; }
    else if (code === 49) { delete style.bg; delete style.bgColor; }
    else if (code === 38 || code === 48) {
      const fg = code === 38;
      let color = null;
      if (codes[i + 1] === 5) { const n = codes[i + 2]; color = n < 16 ? n : palette256(n); i += 2; }
      else if (codes[i + 1] === 2) { color = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`; i += 4; }
      if (typeof color === 'number') { style[fg ? 'fg' : 'bg'] = color; delete style[fg ? 'fgColor' : 'bgColor']; }
      else if (color) { style[fg ? 'fgColor' : 'bgColor'] = color; delete style[fg ? 'fg' : 'bg']; }
    }
  }
}

function span(text, style) {
  if (Object.keys(style).length === 0) return document.createTextNode(text);
  const element = document.createElement('span');
  const classes = [];
  if (style.fg !== undefined) classes.push(`ansi-fg-${style.fg}`);
  if (style.bg !== undefined) classes.push(`ansi-bg-${style.bg}`);
  for (const flag of ['bold', 'dim', 'italic', 'underline']) if (style[flag]) classes.push(`ansi-${flag}`);
  element.className = classes.join(' ');
  if (style.fgColor) element.style.color = style.fgColor;
  if (style.bgColor) element.style.backgroundColor = style.bgColor;
  element.textContent = text;
  return element;
}

/** The line as nodes to append, styled by its SGR sequences. */
export function ansiToNodes(line) {
  const nodes = [];
  const style = {};
  let last = 0;
  for (const match of line.matchAll(ESCAPE)) {
    if (match.index > last) nodes.push(span(line.slice(last, match.index), style));
    if (match[2] === 'm') apply(style, (match[1] || '0').split(';').map((c) => Number(c) || 0));
    last = match.index + match[0].length;
  }
  if (last < line.length) nodes.push(span(line.slice(last), style));
  return nodes;
}

/** The line without escape sequences (for search and download). */
export function plainText(line) {
  return line.replace(ESCAPE, '');
}
