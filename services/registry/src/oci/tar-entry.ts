import type { Header } from 'tar-stream';

/** A tar-stream entry as its iterator yields it. */
export interface TarEntry extends AsyncIterable<unknown> {
  header: Header;
  resume(): unknown;
}

/**
 * The entry's bytes as a plain async iterable of Buffers: tar-stream
 * entries are streamx streams, which Node's stream.pipeline must not treat
 * as Node streams.
 */
export async function* entryChunks(entry: TarEntry): AsyncGenerator<Buffer> {
  for await (const chunk of entry) yield chunk as Buffer; // tar-stream yields Buffers; its types say unknown
}
