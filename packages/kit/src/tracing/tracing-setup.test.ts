import { describe, expect, it } from 'vitest';
import { exportWanted } from './tracing-setup.js';

describe('when spans are exported', () => {
  it('exports only when the standard variables name an OTLP endpoint and nothing switches it off', () => {
    expect(exportWanted({})).toBe(false);
    expect(exportWanted({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(exportWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false);
    expect(exportWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(exportWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(exportWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(exportWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'console,otlp' })).toBe(true);
    expect(exportWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
  });
});
