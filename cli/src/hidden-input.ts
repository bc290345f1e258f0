// The one way the CLI reads a value the user must not see on screen (a secret, a registry
// password): on a terminal it is typed with echo off; otherwise it is all of stdin.
import { CliError } from './global-options.js';

/**
 * Collects the bytes typed at a hidden prompt. The bytes go into one buffer
 * allocated up front (no copies left behind by growing); Enter or Ctrl-D
 * ends the value and is not part of it; Backspace removes one character
 * (a whole UTF-8 sequence); Ctrl-U clears; Ctrl-C cancels; escape
 * sequences (arrow and function keys) are dropped.
 */
export class HiddenLineEditor {
  readonly #buffer: Buffer;
  #length = 0;
  #escape: 'none' | 'esc' | 'sequence' = 'none';

  constructor(
    readonly maxBytes: number,
    private readonly what = 'value',
  ) {
    this.#buffer = Buffer.alloc(maxBytes);
  }

  /** Feeds typed bytes; says whether the line is still open, complete or cancelled. */
  feed(bytes: Uint8Array): 'more' | 'done' | 'cancel' {
    for (const byte of bytes) {
      if (this.#escape === 'esc') {
        // ESC [ and ESC O start a sequence; anything else was a lone key with Alt.
        this.#escape = byte === 0x5b || byte === 0x4f ? 'sequence' : 'none';
        continue;
      }
      if (this.#escape === 'sequence') {
        // Parameters until a final byte in 0x40..0x7e.
        if (byte >= 0x40 && byte <= 0x7e) this.#escape = 'none';
        continue;
      }
      if (byte === 0x1b) {
        this.#escape = 'esc';
        continue;
      }
      if (byte === 0x0d || byte === 0x0a || byte === 0x04) return 'done';
      if (byte === 0x03) return 'cancel';
      if (byte === 0x7f || byte === 0x08) {
        // Drop continuation bytes (10xxxxxx), then the lead byte of the character.
        while (this.#length > 0 && ((this.#buffer[this.#length - 1] ?? 0) & 0xc0) === 0x80) this.#length--;
        if (this.#length > 0) this.#length--;
        this.#buffer.fill(0, this.#length);
        continue;
      }
      if (byte === 0x15) {
        this.#length = 0;
        this.#buffer.fill(0);
        continue;
      }
      // Other control characters are not part of a value.
      if (byte < 0x20 && byte !== 0x09) continue;
      if (this.#length === this.maxBytes) throw new CliError(`the ${this.what} is over ${this.maxBytes} bytes, the limit`);
      this.#buffer[this.#length++] = byte;
    }
    return 'more';
  }

  /** The value typed so far, in a buffer of its own; the editor is wiped. */
  take(): Buffer {
    const value = Buffer.alloc(this.#length);
    this.#buffer.copy(value, 0, 0, this.#length);
    this.wipe();
    return value;
  }

  wipe(): void {
    this.#buffer.fill(0);
    this.#length = 0;
    this.#escape = 'none';
  }
}

export interface HiddenInputOptions {
  /** Shown on stderr, only once echo is off. */
  readonly prompt: string;
  readonly maxBytes: number;
  /** Names the value in errors ("secret value", "password"). */
  readonly what: string;
}

/** Whether stdin is a terminal, where a value is typed at a prompt rather than piped. */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/**
 * Reads a value typed on the terminal without echo. Echo goes off before the
 * prompt is written: keys typed the moment the prompt shows are never echoed.
 */
export async function readHiddenLine(options: HiddenInputOptions): Promise<Buffer> {
  const input = process.stdin;
  const editor = new HiddenLineEditor(options.maxBytes, options.what);
  input.setRawMode(true);
  process.stderr.write(options.prompt);
  input.resume();
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        let state: ReturnType<HiddenLineEditor['feed']>;
        try {
          state = editor.feed(chunk);
        } catch (err) {
          input.off('data', onData);
          editor.wipe();
          reject(err);
          return;
        } finally {
          chunk.fill(0);
        }
        if (state === 'more') return;
        input.off('data', onData);
        if (state === 'cancel') {
          editor.wipe();
          reject(new CliError('cancelled; nothing was stored'));
          return;
        }
        resolve(editor.take());
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}

/**
 * All of stdin (or `input`), byte for byte (no newline stripped), refusing more than the limit,
 * in memory of its own; the chunks read are wiped.
 */
export async function readAllStdin(options: Pick<HiddenInputOptions, 'maxBytes' | 'what'>, input: AsyncIterable<Buffer> = process.stdin): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of input) {
      chunks.push(chunk);
      length += chunk.length;
      if (length > options.maxBytes) throw new CliError(`the ${options.what} on stdin is over ${options.maxBytes} bytes, the limit`);
    }
    return ownedCopy(chunks, length);
  } finally {
    for (const chunk of chunks) chunk.fill(0);
  }
}

/**
 * The UTF-8 bytes of `text` in memory of their own. For a value given on the command line: the
 * string itself cannot be wiped, but the bytes sent on can.
 */
export function ownedUtf8(text: string): Buffer {
  const bytes = Buffer.alloc(Buffer.byteLength(text, 'utf8'));
  bytes.write(text, 'utf8');
  return bytes;
}

/**
 * The first `length` bytes of `parts`, copied into a buffer of its own. Buffer.concat and
 * Buffer.from would put a value under 4 KiB in a slice of Node's shared 8 KiB pool, whose
 * ArrayBuffer every other small Buffer in the process shares; Buffer.alloc never pools.
 */
export function ownedCopy(parts: readonly Uint8Array[], length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let offset = 0;
  for (const part of parts) {
    if (offset === length) break;
    const take = Math.min(part.byteLength, length - offset);
    bytes.set(part.subarray(0, take), offset);
    offset += take;
  }
  return bytes;
}
