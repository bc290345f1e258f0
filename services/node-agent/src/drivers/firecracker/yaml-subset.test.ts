import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { officialSchemaPath } from './official-schema.js';
import { parseYamlSubset, YamlSubsetError } from './yaml-subset.js';

const schemaPath = officialSchemaPath;

describe('parseYamlSubset', () => {
  it('reads block mappings, sequences, quoting, folding and comments', () => {
    const text = [
      '# leading comment',
      'swagger: "2.0"',
      'paths:',
      '  /drives/{drive_id}:',
      '    put:',
      '      parameters:',
      '        - name: drive_id # trailing comment',
      '          in: path',
      '          required: true',
      '        - name: body',
      '      responses:',
      '        204:',
      '          description: Drive',
      '            created or updated',
      'list:',
      '- a',
      "- 'it''s'",
      'flow: [Error, "Off", 2M, 7]',
      'folded: >-',
      '  one',
      '  two',
      '',
      '  three',
      'literal: |',
      '  x',
      '    y',
      'quoted:',
      '  "first line',
      '  second line"',
      'empty:',
      'nums: [-3, 1.5, 0x1F]',
      'hash: "a # not a comment"',
    ].join('\n');
    expect(parseYamlSubset(text)).toEqual({
      swagger: '2.0',
      paths: {
        '/drives/{drive_id}': {
          put: {
            parameters: [{ name: 'drive_id', in: 'path', required: true }, { name: 'body' }],
            responses: { '204': { description: 'Drive created or updated' } },
          },
        },
      },
      list: ['a', "it's"],
      flow: ['Error', 'Off', '2M', 7],
      folded: 'one two\nthree',
      literal: 'x\n  y\n',
      quoted: 'first line second line',
      empty: null,
      nums: [-3, 1.5, 31],
      hash: 'a # not a comment',
    });
  });

  it('keeps YAML 1.1 booleans such as Off and yes as strings (1.2 core schema)', () => {
    expect(parseYamlSubset('a: Off\nb: yes\nc: true\nd: ~')).toEqual({ a: 'Off', b: 'yes', c: true, d: null });
  });

  it('refuses what it does not support, naming the line', () => {
    expect(() => parseYamlSubset('a: &anchor 1\nb: *anchor')).toThrow(YamlSubsetError);
    expect(() => parseYamlSubset('a:\n  x: 1\n  x: 2')).toThrow(/line 3: duplicate key "x"/);
    expect(() => parseYamlSubset('a: {b: 1}')).toThrow(/line 1: unsupported/);
    expect(() => parseYamlSubset('a: "open\nb: 2')).toThrow(/unterminated/);
  });

  // PyYAML is the reference reader here; its YAML 1.1 booleans are narrowed to true/false so
  // both sides follow the 1.2 core schema.
  const pyyaml = (() => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import yaml'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!pyyaml || !existsSync(schemaPath))(
    `reads the official Firecracker schema exactly as PyYAML does${!pyyaml ? ' (skipped: python3 with PyYAML missing)' : !existsSync(schemaPath) ? ` (skipped: ${schemaPath} missing)` : ''}`,
    () => {
      const script = [
        'import json, re, sys, yaml',
        'class L(yaml.SafeLoader): pass',
        "L.yaml_implicit_resolvers = {k: [(t, r) for t, r in v if t != 'tag:yaml.org,2002:bool'] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}",
        "L.add_implicit_resolver('tag:yaml.org,2002:bool', re.compile(r'^(?:true|True|TRUE|false|False|FALSE)$'), list('tTfF'))",
        'def keys(v):',
        '    if isinstance(v, dict): return {str(k): keys(x) for k, x in v.items()}',
        '    if isinstance(v, list): return [keys(x) for x in v]',
        '    return v',
        'print(json.dumps(keys(yaml.load(open(sys.argv[1]), Loader=L))))',
      ].join('\n');
      const reference = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, schemaPath], { encoding: 'utf8' })) as unknown;
      expect(parseYamlSubset(readFileSync(schemaPath, 'utf8'))).toEqual(reference);
    },
  );
});
