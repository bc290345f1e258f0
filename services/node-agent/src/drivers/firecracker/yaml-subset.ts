// A small YAML reader for the block-style subset that API schemas such as Firecracker's
// swagger file use (the repo has no YAML dependency): block mappings and sequences, plain,
// single- and double-quoted scalars (multi-line too), one-line flow sequences, folded and literal
// block scalars, comments. Scalars resolve by the YAML 1.2 core schema (true/false/null, ints,
// floats; "Off" stays a string). Anything else (anchors, aliases, tags, flow mappings, tabs)
// is refused with its line number rather than misread.

interface Line {
  readonly number: number;
  readonly indent: number;
  /** Without indentation and trailing comment; '' for a blank or comment-only line. */
  readonly text: string;
  /** Without indentation, comment kept (block scalars take their lines verbatim). */
  readonly raw: string;
}

export class YamlSubsetError extends Error {
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = 'YamlSubsetError';
  }
}

export function parseYamlSubset(source: string): unknown {
  const lines = source.split(/\r?\n/).map((rawLine, index): Line => {
    const number = index + 1;
    const indentMatch = /^ */.exec(rawLine);
    const indent = indentMatch?.[0].length ?? 0;
    const raw = rawLine.slice(indent);
    if (raw.startsWith('\t')) {
      throw new YamlSubsetError('tab indentation is not supported', number);
    }
    return { number, indent, raw, text: stripComment(raw).trimEnd() };
  });
  const reader = new Reader(lines);
  reader.skipBlank();
  if (reader.done()) {
    return null;
  }
  if (reader.peek().text === '---') {
    reader.next();
    reader.skipBlank();
  }
  const value = reader.block(0);
  reader.skipBlank();
  if (!reader.done()) {
    throw new YamlSubsetError(`unexpected content ${JSON.stringify(reader.peek().text)}`, reader.peek().number);
  }
  return value;
}

class Reader {
  private index = 0;

  constructor(private readonly lines: readonly Line[]) {}

  done(): boolean {
    return this.index >= this.lines.length;
  }

  peek(): Line {
    const line = this.lines[this.index];
    if (line === undefined) {
      throw new YamlSubsetError('unexpected end of document');
    }
    return line;
  }

  next(): Line {
    const line = this.peek();
    this.index += 1;
    return line;
  }

  skipBlank(): void {
    while (!this.done() && this.peek().text === '') {
      this.index += 1;
    }
  }

  /** The node whose first line is the next non-blank line, indented at least minIndent. */
  block(minIndent: number): unknown {
    this.skipBlank();
    const line = this.peek();
    if (line.indent < minIndent) {
      throw new YamlSubsetError('expected an indented value', line.number);
    }
    if (isSequenceItem(line.text)) {
      return this.sequence(line.indent);
    }
    if (findKeyColon(line.text) >= 0) {
      return this.mapping(line.indent);
    }
    this.next();
    return this.scalar(line.text, line, line.indent - 1);
  }

  private mapping(indent: number, firstLine?: Line): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let pending: Line | undefined = firstLine;
    for (;;) {
      let line: Line;
      if (pending !== undefined) {
        line = pending;
        pending = undefined;
      } else {
        this.skipBlank();
        if (this.done() || this.peek().indent !== indent || isSequenceItem(this.peek().text)) {
          return out;
        }
        line = this.next();
      }
      const colon = findKeyColon(line.text);
      if (colon < 0) {
        throw new YamlSubsetError(`expected "key: value", got ${JSON.stringify(line.text)}`, line.number);
      }
      const key = keyOf(line.text.slice(0, colon).trim(), line.number);
      if (Object.hasOwn(out, key)) {
        throw new YamlSubsetError(`duplicate key ${JSON.stringify(key)}`, line.number);
      }
      out[key] = this.valueAfterKey(line.text.slice(colon + 1).trim(), line, indent);
    }
  }

  private sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      this.skipBlank();
      if (this.done() || this.peek().indent !== indent || !isSequenceItem(this.peek().text)) {
        return out;
      }
      const line = this.next();
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        out.push(this.nestedOrNull(indent));
        continue;
      }
      const itemIndent = indent + (line.text.length - rest.length);
      if (isSequenceItem(rest)) {
        throw new YamlSubsetError('nested "- -" sequences are not supported', line.number);
      }
      if (findKeyColon(rest) >= 0 && !/^["'[]/.test(rest)) {
        // "- key: value" opens a mapping whose keys sit where "key" starts.
        out.push(this.mapping(itemIndent, { ...line, indent: itemIndent, text: rest }));
        continue;
      }
      out.push(this.scalar(rest, line, indent));
    }
  }

  private valueAfterKey(rest: string, line: Line, indent: number): unknown {
    if (rest === '') {
      this.skipBlank();
      // A sequence may sit at its key's own indentation.
      if (!this.done() && this.peek().indent === indent && isSequenceItem(this.peek().text)) {
        return this.sequence(indent);
      }
      return this.nestedOrNull(indent);
    }
    if (/^[>|][+-]?$/.test(rest)) {
      return this.blockScalar(rest, indent);
    }
    return this.scalar(rest, line, indent);
  }

  private nestedOrNull(indent: number): unknown {
    this.skipBlank();
    if (this.done() || this.peek().indent <= indent) {
      return null;
    }
    return this.block(indent + 1);
  }

  /** A scalar starting with text on line; continuation lines must be indented beyond parentIndent. */
  private scalar(text: string, line: Line, parentIndent: number): unknown {
    const first = text[0];
    if (first === '&' || first === '*' || first === '!' || first === '{' || first === '%' || first === '@' || first === '`') {
      throw new YamlSubsetError(`unsupported YAML construct at ${JSON.stringify(text.slice(0, 20))}`, line.number);
    }
    if (first === '[') {
      return parseFlowSequence(text, line.number);
    }
    if (first === '"' || first === "'") {
      return this.quoted(line, parentIndent);
    }
    const parts = [text];
    while (!this.done()) {
      const next = this.peek();
      if (next.text === '' || next.indent <= parentIndent) {
        break;
      }
      parts.push(next.text);
      this.next();
    }
    return resolvePlain(parts.join(' '));
  }

  /** A quoted scalar: its opening quote is on line; it may run over several lines. */
  private quoted(line: Line, parentIndent: number): string {
    const start = line.raw.search(/["']/);
    const quote = line.raw[start] as '"' | "'";
    const pieces: string[] = [];
    let current = line.raw.slice(start + 1);
    let lineNumber = line.number;
    for (;;) {
      const end = closingQuote(current, quote);
      if (end >= 0) {
        pieces.push(current.slice(0, end));
        const after = stripComment(current.slice(end + 1)).trim();
        if (after !== '') {
          throw new YamlSubsetError(`unexpected ${JSON.stringify(after)} after a quoted scalar`, lineNumber);
        }
        break;
      }
      pieces.push(current);
      if (this.done() || (this.peek().indent <= parentIndent && this.peek().text !== '')) {
        throw new YamlSubsetError('unterminated quoted scalar', line.number);
      }
      const next = this.next();
      lineNumber = next.number;
      current = next.raw;
    }
    // Line folding: a break between non-empty lines is one space, each empty line a newline.
    let folded = '';
    pieces.forEach((piece, i) => {
      const trimmed = i === 0 ? piece.trimEnd() : i === pieces.length - 1 ? piece.trimStart() : piece.trim();
      if (i === 0) {
        folded = trimmed;
      } else if (trimmed === '') {
        folded += '\n';
      } else {
        folded += folded.endsWith('\n') || folded === '' ? trimmed : ` ${trimmed}`;
      }
    });
    return quote === "'" ? folded.replaceAll("''", "'") : unescapeDouble(folded, line.number);
  }

  private blockScalar(header: string, indent: number): string {
    const literal = header.startsWith('|');
    const chomp = header.endsWith('-') ? 'strip' : header.endsWith('+') ? 'keep' : 'clip';
    const body: { indent: number; raw: string }[] = [];
    while (!this.done()) {
      const next = this.peek();
      if (next.raw.trim() !== '' && next.indent <= indent) {
        break;
      }
      body.push({ indent: next.indent, raw: next.raw });
      this.next();
    }
    const contentIndent = Math.min(...body.filter((l) => l.raw.trim() !== '').map((l) => l.indent));
    const texts = body.map((l) => (l.raw.trim() === '' ? '' : ' '.repeat(l.indent - contentIndent) + l.raw));
    let text = '';
    texts.forEach((t, i) => {
      const previous = texts[i - 1];
      if (i === 0) {
        text = t;
      } else if (literal || t.startsWith(' ') || previous?.startsWith(' ')) {
        text += `\n${t}`;
      } else if (t === '') {
        // Folding: the break before empty lines is dropped, each empty line is one newline.
        text += '\n';
      } else {
        text += previous === '' ? t : ` ${t}`;
      }
    });
    const trimmed = text.replace(/\n+$/, '');
    return chomp === 'strip' ? trimmed : chomp === 'keep' ? `${text}\n` : `${trimmed}\n`;
  }
}

function isSequenceItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

/** Index of the ':' that ends a mapping key (followed by a space or the end), or -1. */
function findKeyColon(text: string): number {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === quote) {
        quote = undefined;
      }
      continue;
    }
    if ((c === '"' || c === "'") && i === 0) {
      quote = c;
    } else if (c === ':' && (i + 1 === text.length || text[i + 1] === ' ')) {
      return i;
    }
  }
  return -1;
}

function keyOf(text: string, line: number): string {
  if (text.startsWith('"') || text.startsWith("'")) {
    const quote = text[0] as '"' | "'";
    const end = closingQuote(text.slice(1), quote);
    if (end !== text.length - 2) {
      throw new YamlSubsetError(`malformed quoted key ${text}`, line);
    }
    const inner = text.slice(1, -1);
    return quote === "'" ? inner.replaceAll("''", "'") : unescapeDouble(inner, line);
  }
  if (text === '' || text.startsWith('?') || text.startsWith('&') || text.startsWith('*') || text.startsWith('!')) {
    throw new YamlSubsetError(`unsupported mapping key ${JSON.stringify(text)}`, line);
  }
  return text;
}

/** Where the closing quote is in text (which starts just after the opening one), or -1. */
function closingQuote(text: string, quote: '"' | "'"): number {
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote === '"' && c === '\\') {
      i += 1;
    } else if (c === quote) {
      if (quote === "'" && text[i + 1] === "'") {
        i += 1;
      } else {
        return i;
      }
    }
  }
  return -1;
}

function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote !== undefined) {
      if (quote === '"' && c === '\\') {
        i += 1;
      } else if (c === quote) {
        quote = undefined;
      }
      continue;
    }
    if ((c === '"' || c === "'") && (i === 0 || /[\s:[,-]/.test(text[i - 1] ?? ''))) {
      quote = c;
    } else if (c === '#' && (i === 0 || text[i - 1] === ' ')) {
      return text.slice(0, i);
    }
  }
  return text;
}

const ESCAPES: Record<string, string> = { '0': '\0', t: '\t', n: '\n', r: '\r', '"': '"', '\\': '\\', '/': '/', ' ': ' ', e: '\x1b' };

function unescapeDouble(text: string, line: number): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)/g, (_match, esc: string) => {
    if (esc.length > 1) {
      return String.fromCharCode(parseInt(esc.slice(1), 16));
    }
    const out = ESCAPES[esc];
    if (out === undefined) {
      throw new YamlSubsetError(`unsupported escape \\${esc}`, line);
    }
    return out;
  });
}

function parseFlowSequence(text: string, line: number): unknown[] {
  if (!text.endsWith(']')) {
    throw new YamlSubsetError('flow sequences must close on the line they open', line);
  }
  const inner = text.slice(1, -1).trim();
  if (inner === '') {
    return [];
  }
  const items: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < inner.length; i += 1) {
    const c = inner[i];
    if (quote !== undefined) {
      if (c === quote) {
        quote = undefined;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '[' || c === '{') {
      throw new YamlSubsetError('nested flow collections are not supported', line);
    } else if (c === ',') {
      items.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(inner.slice(start).trim());
  return items.map((item) => {
    if (item.startsWith('"') || item.startsWith("'")) {
      return keyOf(item, line);
    }
    return resolvePlain(item);
  });
}

/** YAML 1.2 core schema resolution of a plain scalar. */
function resolvePlain(text: string): unknown {
  if (/^(?:null|Null|NULL|~)?$/.test(text)) {
    return null;
  }
  if (/^(?:true|True|TRUE)$/.test(text)) {
    return true;
  }
  if (/^(?:false|False|FALSE)$/.test(text)) {
    return false;
  }
  if (/^[-+]?[0-9]+$/.test(text)) {
    return Number(text);
  }
  if (/^0x[0-9a-fA-F]+$/.test(text)) {
    return parseInt(text.slice(2), 16);
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text)) {
    return Number(text);
  }
  return text;
}
