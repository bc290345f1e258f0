// The package boundaries `npm run lint` enforces (see docs/architecture.md, "Layout"). Paths are
// real paths: workspace packages imported by name resolve through their node_modules symlinks.
const TEST_FILE = '(\\.test\\.ts$|/test/|/bench/|^test/|^packages/testing/)';
const PACKAGE = '^(packages/[^/]+|services/[^/]+|cli|test|scripts)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-service-imports-another-service',
      comment: 'A service is one deployable: it talks to the others over RPC, never by importing their code.',
      severity: 'error',
      from: { path: '^services/([^/]+)/' },
      to: { path: '^services/', pathNot: '^services/$1/' },
    },
    {
      name: 'no-relative-import-across-packages',
      comment: 'Between packages, import by package name (@shellwego/...), never by a relative path.',
      severity: 'error',
      from: { path: PACKAGE },
      to: { dependencyTypes: ['local'], dependencyTypesNot: ['aliased'], pathNot: '^$1/' },
    },
    {
      name: 'testing-only-in-tests',
      comment: '@shellwego/testing (stand-ins, harnesses, fixtures) is for tests and benchmarks only.',
      severity: 'error',
      from: { pathNot: `${TEST_FILE}|^scripts/(test|bench)\\.ts$|^vitest\\.config\\.ts$` },
      to: { path: '^packages/testing/' },
    },
    {
      name: 'services-use-contracts-kit-clients',
      comment: 'A service imports only the contracts, the kit and the clients (and npm packages).',
      severity: 'error',
      from: { path: '^services/[^/]+/', pathNot: TEST_FILE },
      to: { path: '^(packages/(?!contracts/|kit/|clients/)|cli/|test/|scripts/)' },
    },
    {
      name: 'kit-imports-nothing-above-it',
      comment: 'The kit holds shared mechanisms only: it may use the contracts, nothing above them.',
      severity: 'error',
      from: { path: '^packages/kit/', pathNot: TEST_FILE },
      to: { path: '^(packages/(?!kit/|contracts/)|services/|cli/|test/|scripts/)' },
    },
    {
      name: 'clients-use-contracts-and-kit',
      severity: 'error',
      from: { path: '^packages/clients/', pathNot: TEST_FILE },
      to: { path: '^(packages/(?!clients/|kit/|contracts/)|services/|cli/|test/|scripts/)' },
    },
    {
      name: 'contracts-stand-alone',
      severity: 'error',
      from: { path: '^packages/contracts/' },
      to: { path: '^(packages/(?!contracts/)|services/|cli/|test/|scripts/)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { pathNot: TEST_FILE },
      to: { circular: true, viaOnly: { pathNot: TEST_FILE } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|\\.cache)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs'] },
  },
};
