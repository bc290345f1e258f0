// No name, id, path or other text in shellwego's API may hold U+0000: PostgreSQL cannot store it
// in a text column, so such a request used to fail deep in a handler as INTERNAL (found by the
// protocol fuzzer: DrainNode with a NUL in node_id). One check before every handler answers it as
// the client's mistake. Secret values are bytes fields and are never looked at here.
import type { DescField, DescMessage, Message } from '@bufbuild/protobuf';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';

export function refuseNulStrings(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message, '');
      return next(req);
    }
    const messages = req.message;
    const input = req.method.input;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of messages) {
          check(input, message, '');
          yield message;
        }
      })(),
    });
  };
}

function check(desc: DescMessage, message: Message, path: string): void {
  const values = message as unknown as Record<string, unknown>;
  for (const field of desc.fields) {
    const value = field.oneof === undefined ? values[field.localName] : oneofValue(values[field.oneof.localName], field);
    if (value !== undefined) checkField(field, value, `${path}${field.name}`);
  }
}

function oneofValue(oneof: unknown, field: DescField): unknown {
  const selected = oneof as { case?: string; value?: unknown } | undefined;
  return selected?.case === field.localName ? selected.value : undefined;
}

function checkField(field: DescField, value: unknown, path: string): void {
  switch (field.fieldKind) {
    case 'scalar':
      if (typeof value === 'string') checkText(value, path);
      return;
    case 'message':
      check(field.message, value as Message, `${path}.`);
      return;
    case 'list':
      (value as unknown[]).forEach((item, i) => {
        if (typeof item === 'string') checkText(item, `${path}[${i}]`);
        else if (field.listKind === 'message') check(field.message, item as Message, `${path}[${i}].`);
      });
      return;
    case 'map':
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        checkText(key, `${path} key`);
        if (typeof item === 'string') checkText(item, `${path}[${JSON.stringify(key.slice(0, 40))}]`);
        else if (field.mapKind === 'message') check(field.message, item as Message, `${path}[${JSON.stringify(key.slice(0, 40))}].`);
      }
      return;
    case 'enum':
      return;
  }
}

function checkText(text: string, path: string): void {
  if (text.includes('\u0000'))
    throw new ConnectError(`${path}: contains a NUL character (U+0000), which no shellwego name, id or text may hold`, Code.InvalidArgument);
}
