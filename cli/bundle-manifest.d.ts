// Types for bundle-manifest.js, which stays JavaScript so the launcher can use it without tsx.

/** cli/dist: the bundle's entry and its chunks. */
export declare const bundleDir: string;
/** cli/dist/main.js, what bin/shellwego.js runs. */
export declare const bundleEntry: string;
/** cli/dist/manifest.json: when the bundle's build began and the files it read. */
export declare const manifestFile: string;
export declare function manifestText(startedAtMs: number, inputs: readonly string[]): string;
export declare function bundleIsFresh(): boolean;
