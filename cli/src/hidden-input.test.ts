import { describe, expect, it } from 'vitest';
import { HiddenLineEditor } from './hidden-input.js';

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
