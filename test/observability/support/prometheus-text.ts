// Metrics text read by Prometheus's own tools: promtool (the Go parser and linter Prometheus
// itself uses) and the reference Python client's parser, which gives the samples as JSON.
import { execa } from 'execa';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly samples: readonly Sample[];
}

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": family.name, "type": family.type,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples]})
print(json.dumps(out))
`;

/** Families and samples as the reference parser reads them; throws on text it cannot parse. */
export async function parseMetrics(text: string): Promise<Family[]> {
  // Debian's python3 (where python3-prometheus-client is installed), not whatever is first on PATH.
  const { stdout } = await execa('/usr/bin/python3', ['-c', PARSE], { input: text });
  return JSON.parse(stdout) as Family[];
}

/** promtool's verdict: '' when the text parses and follows Prometheus's naming conventions, else its complaints. */
export async function promtoolProblems(text: string): Promise<string> {
  const result = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
  return result.exitCode === 0 ? '' : `exit ${result.exitCode}: ${result.stdout}${result.stderr}`;
}

export function samplesOf(families: readonly Family[], sampleName: string): Sample[] {
  return families.flatMap((family) => family.samples.filter((sample) => sample.name === sampleName));
}
