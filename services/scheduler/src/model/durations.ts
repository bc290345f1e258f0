import { create } from '@bufbuild/protobuf';
import { type Duration, DurationSchema } from '@bufbuild/protobuf/wkt';

export function durationMs(value: Duration): number {
  return Number(value.seconds) * 1000 + Math.trunc(value.nanos / 1_000_000);
}

export function durationFromMs(ms: number): Duration {
  const whole = Math.floor(ms / 1000);
  return create(DurationSchema, { seconds: BigInt(whole), nanos: Math.round((ms - whole * 1000) * 1_000_000) });
}
