import { describe, expect, it } from 'vitest';
import { HiddenLineEditor, ownedCopy, ownedUtf8, readAllStdin } from './hidden-input.js';

describe('the hidden prompt', () => {
  it('keeps typed bytes, ends at Enter without it, and edits by character', () => {
    const editor = new HiddenLineEditor(64 * 1024);
    expect(editor.feed(Buffer.from('pässw'))).toBe('more');
    expect(editor.feed(Uint8Array.of(0x7f))).toBe('more');
    expect(editor.feed(Buffer.from('ord\x1b['))).toBe('more');
    expect(editor.feed(Buffer.from('1;5D!\x1bOA\rignored'))).toBe('done');
    expect(editor.take().toString()).toBe('pässord!');
    expect(editor.take()).toHaveLength(0);
  });

  it('removes a whole multi-byte character on Backspace, clears on Ctrl-U and cancels on Ctrl-C', () => {
    const editor = new HiddenLineEditor(64 * 1024);
    editor.feed(Buffer.from('aé'));
    editor.feed(Uint8Array.of(0x7f));
    editor.feed(Buffer.from('b\n'));
    expect(editor.take().toString()).toBe('ab');
    editor.feed(Buffer.from('gone'));
    editor.feed(Uint8Array.of(0x15));
    editor.feed(Buffer.from('kept'));
    expect(editor.feed(Uint8Array.of(0x04))).toBe('done');
    expect(editor.take().toString()).toBe('kept');
    expect(editor.feed(Buffer.from('abc\x03'))).toBe('cancel');
  });
});

// A Buffer from Node's shared pool is a slice of an 8 KiB ArrayBuffer that other small Buffers share.
const ownsItsMemory = (buf: Uint8Array): boolean => buf.byteOffset === 0 && buf.buffer.byteLength === buf.byteLength;

describe('secret values read by the CLI', () => {
  it('reads stdin into memory of its own and wipes the chunks it read', async () => {
    const chunks = [Buffer.alloc(5, 'a'), Buffer.alloc(3, 'b')];
    async function* input(): AsyncGenerator<Buffer> {
      yield* chunks;
    }
    const value = await readAllStdin({ maxBytes: 64 * 1024, what: 'value' }, input());
    expect(value.toString()).toBe('aaaaabbb');
    expect(ownsItsMemory(value)).toBe(true);
    for (const chunk of chunks) expect(chunk.every((byte) => byte === 0)).toBe(true);
  });

  it('wipes the chunks it read when the value is over the limit', async () => {
    const chunks = [Buffer.alloc(4, 'a'), Buffer.alloc(4, 'b')];
    async function* input(): AsyncGenerator<Buffer> {
      yield* chunks;
    }
    await expect(readAllStdin({ maxBytes: 6, what: 'value' }, input())).rejects.toThrow('over 6 bytes');
    for (const chunk of chunks) expect(chunk.every((byte) => byte === 0)).toBe(true);
  });

  it('encodes a value given on the command line into memory of its own', () => {
    const value = ownedUtf8('pässword');
    expect(value.toString()).toBe('pässword');
    expect(ownsItsMemory(value)).toBe(true);
  });

  it('copies a prefix into memory of its own', () => {
    const value = ownedCopy([Buffer.from('pass'), Buffer.from('word\n')], 8);
    expect(value.toString()).toBe('password');
    expect(ownsItsMemory(value)).toBe(true);
  });
});
