// One error for every configuration problem found at start-up, so an operator fixes them in one go.

export type ConfigSource = 'env' | 'file' | 'default' | 'missing';

export interface ConfigIssue {
  /** The setting's key (camelCase), or the unknown key found in the file. */
  setting: string;
  /** The env var that sets it, when it is a known setting. */
  envVar: string | undefined;
  source: ConfigSource;
  /** One line naming the setting; never contains a sensitive value. */
  message: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super([`invalid configuration (${count}):`, ...issues.map((issue) => issue.message)].join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
